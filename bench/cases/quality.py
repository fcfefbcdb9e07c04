"""Case 7: the generated GX suite against the compiled row checks, on the same typed rows."""

from __future__ import annotations

from bench.harness import Context, Outcome

VARIANTS = "bench.variants.quality"


def gx_vs_compiled(ctx: Context, scale: int) -> Outcome:
    params = {"rows": scale}
    gx = ctx.measure("gx", "GX suite (validate_dataframe)", f"{VARIANTS}:gx_suite", params)
    compiled = ctx.measure(
        "compiled", "compiled checks (Table.split)", f"{VARIANTS}:compiled_checks", params
    )
    return Outcome(
        summary=(
            f"compiled checks {compiled.rows_per_s:,.0f} rows/s,"
            f" GX suite {gx.rows_per_s:,.0f} rows/s ({gx.extra['expectations']} expectations)"
        ),
        measurements=[compiled, gx],
        ratios={
            "compiled speed / GX speed": gx.seconds / compiled.seconds,
            "GX peak RSS / compiled": gx.peak_rss_mb / compiled.peak_rss_mb,
        },
    )
