"""The measured work, run in `bench.worker` subprocesses: `f(params) -> {"seconds", "rows"}`."""
