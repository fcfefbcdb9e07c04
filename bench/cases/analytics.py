"""Cases 4, 5 and 6: a flow's pure transform against pandas, with an absolute throughput target."""

from __future__ import annotations

from bench.harness import Check, Context, Outcome

VARIANTS = "bench.variants.analytics"
PANDAS_FRAUD_ROWS = 100_000
"""groupby().apply costs the same per account at any scale; beyond this it only burns minutes."""


def _compared(
    ctx: Context,
    scale: int,
    ours: tuple[str, str],
    pandas: tuple[str, str],
    *,
    target_rows_per_s: float,
    pandas_rows: int | None = None,
) -> Outcome:
    mine = ctx.measure("flow", ours[0], f"{VARIANTS}:{ours[1]}", {"rows": scale})
    rows = min(scale, pandas_rows or scale)
    theirs = ctx.measure("pandas", pandas[0], f"{VARIANTS}:{pandas[1]}", {"rows": rows})
    return Outcome(
        summary=f"{mine.rows_per_s:,.0f} rows/s; pandas {theirs.rows_per_s:,.0f} rows/s",
        measurements=[mine, theirs],
        ratios={"speed vs pandas": mine.rows_per_s / theirs.rows_per_s},
        checks=[Check("throughput", mine.rows_per_s, ">=", target_rows_per_s, unit=" rows/s")],
        note=f"pandas measured on {rows:,} rows (rows/s is per-row cost)" if rows < scale else "",
    )


def enrichment(ctx: Context, scale: int) -> Outcome:
    return _compared(
        ctx,
        scale,
        ("stream_enrichment.enriched_events (Polars, lazy)", "enrichment_polars"),
        ("pandas merge, merge", "enrichment_pandas"),
        target_rows_per_s=10_000_000,
    )


def fraud(ctx: Context, scale: int) -> Outcome:
    return _compared(
        ctx,
        scale,
        ("fraud_detection detect_fraud (Polars + NumPy)", "fraud_polars"),
        ("pandas groupby(account).apply", "fraud_pandas"),
        target_rows_per_s=1_000_000,
        pandas_rows=PANDAS_FRAUD_ROWS,
    )


def windows(ctx: Context, scale: int) -> Outcome:
    return _compared(
        ctx,
        scale,
        ("realtime_analytics window_metrics + top_products", "windows_polars"),
        ("pandas groupby().resample() + head(n)", "windows_pandas"),
        target_rows_per_s=5_000_000,
    )
