"""Load benchmark: `python -m bench.run` (see docs/benchmarks.md for the latest figures)."""
