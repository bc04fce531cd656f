"""Launching the system's processes, the same way for `make run`, the bench and the tests.

`settings.py`: the stack's settings; `spec.py`: one declarative `Component` per process;
`runner.py`: starts, awaits and stops them; `broker_accounts.py`: one RabbitMQ account per
component, derived from the workers' services (so it lives here, above both tiers).
"""
