"""Fraud detection: per-account rules with carried-over state, and an isolation forest."""
