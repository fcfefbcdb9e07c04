"""Benchmarks (issue 8): `make bench` or `python -m bench`; results in bench/RESULTS.md.

- `cases/`: what each case measures, its baselines, ratios and targets (runs in the parent,
  which stays small and imports none of the measured libraries);
- `variants/`: the measured work, each run by `worker` in a fresh process that times itself and
  reports its own peak RSS;
- `data`: generated inputs, cached per scale under bench/out/data and reused across runs;
- `harness`, `report`: running measurements, results.json and RESULTS.md;
- `servers`: free ports, health waits and the Prefect server, shared with the test suite.
"""
