"""Benchmarks (not tests): `python -m bench [--quick]` measures the stack against a baseline."""
