"""Benchmarks of the ipmp figures (see BENCHMARKS.md); run with ``python -m bench.run``."""
