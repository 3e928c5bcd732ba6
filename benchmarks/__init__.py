"""Benchmarks for tinygrad_mm."""
