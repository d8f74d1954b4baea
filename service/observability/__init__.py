"""Structured logs, the per-request access log and Prometheus metrics."""
