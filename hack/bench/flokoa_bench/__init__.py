"""Benchmark harness of flokoa-controller vs the limit vs kopf (see docs/benchmarks.md)."""
