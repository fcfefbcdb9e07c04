"""Cases 4, 5 and 6: a flow's pure transform against pandas (and DuckDB), with their targets."""

from __future__ import annotations

from bench.harness import Check, Context, Outcome

VARIANTS = "bench.variants.analytics"
PANDAS_FRAUD_ROWS = 100_000
"""groupby().apply costs the same per account at any scale; beyond this it only burns minutes."""


DUCKDB_TARGET_ROWS = 10_000_000
"""The issue's DuckDB target (>= 1.0x) holds at 10M rows; smaller runs report the ratio only."""


def _compared(
    ctx: Context,
    scale: int,
    ours: tuple[str, str],
    pandas: tuple[str, str],
    *,
    target_rows_per_s: float,
    pandas_rows: int | None = None,
    vs_pandas_target: float | None = None,
    duckdb: tuple[str, str] | None = None,
) -> Outcome:
    mine = ctx.measure("flow", ours[0], f"{VARIANTS}:{ours[1]}", {"rows": scale})
    rows = min(scale, pandas_rows or scale)
    theirs = ctx.measure("pandas", pandas[0], f"{VARIANTS}:{pandas[1]}", {"rows": rows})
    measurements = [mine, theirs]
    ratios = {"speed vs pandas": mine.rows_per_s / theirs.rows_per_s}
    checks = [Check("throughput", mine.rows_per_s, ">=", target_rows_per_s, unit=" rows/s")]
    if vs_pandas_target is not None:
        checks.append(Check("speed vs pandas", ratios["speed vs pandas"], ">=", vs_pandas_target))
    summary = f"{mine.rows_per_s:,.0f} rows/s; pandas {theirs.rows_per_s:,.0f} rows/s"
    if duckdb:
        peer = ctx.measure("duckdb", duckdb[0], f"{VARIANTS}:{duckdb[1]}", {"rows": scale})
        measurements.append(peer)
        ratios["speed vs DuckDB"] = mine.rows_per_s / peer.rows_per_s
        summary += f"; DuckDB {peer.rows_per_s:,.0f} rows/s"
        if scale >= DUCKDB_TARGET_ROWS:
            checks.append(Check("speed vs DuckDB", ratios["speed vs DuckDB"], ">=", 1.0))
    return Outcome(
        summary=summary,
        measurements=measurements,
        ratios=ratios,
        checks=checks,
        note=f"pandas measured on {rows:,} rows (rows/s is per-row cost)" if rows < scale else "",
    )


def enrichment(ctx: Context, scale: int) -> Outcome:
    return _compared(
        ctx,
        scale,
        ("stream_enrichment.enriched_events (Polars, lazy)", "enrichment_polars"),
        ("pandas merge, merge", "enrichment_pandas"),
        target_rows_per_s=10_000_000,
        duckdb=("DuckDB SQL left joins over the same Arrow tables", "enrichment_duckdb"),
    )


def fraud(ctx: Context, scale: int) -> Outcome:
    return _compared(
        ctx,
        scale,
        ("fraud_detection detect_fraud (Polars + NumPy)", "fraud_polars"),
        ("pandas groupby(account).apply", "fraud_pandas"),
        target_rows_per_s=1_000_000,
        pandas_rows=PANDAS_FRAUD_ROWS,
        vs_pandas_target=40.0,
    )


def windows(ctx: Context, scale: int) -> Outcome:
    return _compared(
        ctx,
        scale,
        ("realtime_analytics window_metrics + top_products", "windows_polars"),
        ("pandas groupby().resample() + head(n)", "windows_pandas"),
        target_rows_per_s=5_000_000,
        duckdb=("DuckDB SQL time_bucket + quantile_cont, row_number top-n", "windows_duckdb"),
    )
