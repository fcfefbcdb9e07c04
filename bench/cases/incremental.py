"""Case 3: a re-run of the S3 data pipeline flow with no new files, and with 1% new files."""

from __future__ import annotations

from bench.cases.ingest import landing
from bench.harness import Check, Context, Outcome

NEW_SHARE = 0.01
RERUN_TARGET_SECONDS = 1.5
"""The issue's wall-time bound for a re-run that finds no new files, at any size."""


def rerun_cost(ctx: Context, scale: int) -> Outcome:
    files = landing(ctx, scale)
    extra_rows = max(1, int(scale * NEW_SHARE))
    extra = landing(ctx, extra_rows, offset=scale) / "landing" / "orders"
    runs = ctx.measure(
        "flow",
        "S3 data pipeline flow: first run (re-runs in details)",
        "bench.variants.incremental:incremental",
        {"extra_files": [str(path) for path in sorted(extra.glob("*.csv"))]},
        lake_from=files,
        env=ctx.prefect_env(),
    )
    rerun_seconds = runs.extra["rerun_seconds"]
    none_new = rerun_seconds / runs.seconds
    one_percent = runs.extra["incremental_seconds"] / runs.seconds
    return Outcome(
        summary=(
            f"first run {runs.seconds:.1f} s; no new files {rerun_seconds:.2f} s;"
            f" 1% new files {runs.extra['incremental_seconds']:.1f} s"
        ),
        measurements=[runs],
        ratios={"no-new-data re-run / first": none_new, "1% new files / first": one_percent},
        checks=[Check("no-new-data re-run", rerun_seconds, "<=", RERUN_TARGET_SECONDS, unit=" s")],
    )
