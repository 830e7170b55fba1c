"""Benchmark harness comparing zeropipe with pyzmq; run it with ``python -m benchmarks.run``."""
