"""Benchmarks: the comparison harness (``python -m benchmarks.harness``) and stage benchmarks."""
