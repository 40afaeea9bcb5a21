"""Benchmarks of agent-pool-store against the reference's replay strategy and the raw drivers.

Run ``make bench`` (full, writes ``docs/benchmarks.md``) or ``make bench BENCH_ARGS=--quick``
(a smoke run into a temporary directory). See ``python -m benchmarks --help``.
"""
