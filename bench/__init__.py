"""Benchmarks of aiorch: `python -m bench` starts a local stack and prints one table of figures."""
