"""`micro-db`: database setup, seed data (`commands.py`) and the invariant audit
(`invariants.py`, `micro-db check`)."""
