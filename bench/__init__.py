"""Benchmarks of issue 8: `make bench` (or `python -m bench`); see bench/__main__.py."""
