"""Benchmarks: ratios against a reference measured in the same run (see docs/performance.md)."""
