"""Benchmark smoke tests: the benchmark code runs and reports at a tiny size (no timing
asserted)."""
