"""Throughput and latency benchmarks of oxanus_sync against a private Redis server.

Run them with ``python -m benchmarks`` from the repository root; benchmarks/README.md
describes the method, the workloads and the latest results.
"""
