"""Cases 1 and 2: ingest throughput against the raw floor and naive pandas; the memory bound."""

from __future__ import annotations

from typing import Any

from bench.harness import Check, Context, Outcome

CORE = "bench.variants.ingest:core"
RAW_FLOOR = "bench.variants.ingest:raw_floor"
PANDAS = "bench.variants.ingest:pandas_naive"
ROWS_PER_FILE = 1_000_000


def landing(ctx: Context, rows: int, rows_per_file: int | None = None) -> dict[str, Any]:
    """Params naming the landing CSV files of `rows` orders; files of 1M rows unless told."""
    per_file = rows_per_file or min(rows, ROWS_PER_FILE)
    folder, manifest = ctx.prepare(
        f"landing-orders-{rows}-{per_file}",
        "bench.data:landing_orders",
        {"rows": rows, "rows_per_file": per_file},
    )
    return {"files": [str(folder / name) for name in manifest["files"]]}


def throughput(ctx: Context, scale: int) -> Outcome:
    files = landing(ctx, scale)
    core = ctx.measure("core", "flows.core ingest", CORE, files)
    floor = ctx.measure("raw_floor", "raw floor: pyarrow CSV + write_deltalake", RAW_FLOOR, files)
    naive = ctx.measure(
        "pandas", "naive pandas: read_csv, drop_duplicates, to_parquet", PANDAS, files
    )
    vs_floor = core.rows_per_s / floor.rows_per_s
    vs_pandas = core.rows_per_s / naive.rows_per_s
    return Outcome(
        summary=f"{core.rows_per_s:,.0f} rows/s ({core.extra['rejected']:,} quarantined)",
        measurements=[core, floor, naive],
        ratios={"vs raw floor": vs_floor, "vs naive pandas": vs_pandas},
        checks=[
            Check("rows/s vs raw floor", vs_floor, ">=", 0.7),
            Check("rows/s vs naive pandas", vs_pandas, ">=", 3.0),
        ],
    )


def memory_bound(ctx: Context, scale: int) -> Outcome:
    """One file of `scale` rows, then of 4x: streaming keeps the peak flat, a full read does not."""
    one = landing(ctx, scale, rows_per_file=scale)
    four = landing(ctx, 4 * scale, rows_per_file=4 * scale)
    core_1 = ctx.measure("core_1x", "flows.core ingest, 1x (one file)", CORE, one)
    core_4 = ctx.measure("core_4x", "flows.core ingest, 4x (one file)", CORE, four)
    floor_1 = ctx.measure("raw_floor_1x", "raw floor (whole-file read), 1x", RAW_FLOOR, one)
    floor_4 = ctx.measure("raw_floor_4x", "raw floor (whole-file read), 4x", RAW_FLOOR, four)
    growth = core_4.peak_rss_mb / core_1.peak_rss_mb
    floor_growth = floor_4.peak_rss_mb / floor_1.peak_rss_mb
    return Outcome(
        summary=f"peak RSS {core_1.peak_rss_mb:,.0f} MB at 1x, {core_4.peak_rss_mb:,.0f} MB at 4x",
        measurements=[core_1, core_4, floor_1, floor_4],
        ratios={"peak 4x / 1x": growth, "raw floor peak 4x / 1x": floor_growth},
        checks=[Check("peak RSS 4x / 1x", growth, "<=", 1.2)],
    )
