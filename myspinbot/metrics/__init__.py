"""Prometheus metrics: /metrics (endpoint), per-process samples (process, http), job
metrics read from Redis (jobs)."""
