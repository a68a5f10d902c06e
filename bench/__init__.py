"""Benchmarks: the pipeline against Kafka's own tools (make bench)."""
