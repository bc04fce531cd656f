"""`micro-rollout`: the guarded strangler rollout (SPEC §5, docs/strangler-runbook.md). It
steps P_VALUE, reads both users generations' metrics over each hold and rolls back on a
breach. Imports kong (rendering, the local gateway) and launch (ports), never the tiers."""
