"""Launching the system's processes, the same way for `make run`, the bench and the tests.

`settings.py`: the stack's settings; `spec.py`: one declarative `Component` per process;
`runner.py`: starts, awaits and stops them.
"""
