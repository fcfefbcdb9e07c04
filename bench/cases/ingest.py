"""Cases 1 and 2: ingest throughput against the raw floor and naive pandas; the memory bound."""

from __future__ import annotations

from pathlib import Path

from bench.harness import Check, Context, Outcome

PIPELINE = "bench.variants.ingest:pipeline"
RAW_FLOOR = "bench.variants.ingest:raw_floor"
PANDAS = "bench.variants.ingest:pandas_naive"
DUCKDB = "bench.variants.ingest:duckdb_naive"
ROWS_PER_FILE = 1_000_000


def landing(ctx: Context, rows: int, *, rows_per_file: int | None = None, offset: int = 0) -> Path:
    """A lake folder holding `landing/orders/*.csv` with `rows` orders; 1M-row files by default."""
    per_file = rows_per_file or min(rows, ROWS_PER_FILE)
    folder, _ = ctx.prepare(
        f"landing-orders-{rows}-{per_file}-{offset}",
        "bench.data:landing_orders",
        {"rows": rows, "rows_per_file": per_file, "offset": offset},
    )
    return folder


def throughput(ctx: Context, scale: int) -> Outcome:
    files = landing(ctx, scale)
    ours = ctx.measure(
        "pipeline", "S3 pipeline: bronze, then silver + quarantine", PIPELINE, {}, lake_from=files
    )
    floor = ctx.measure(
        "raw_floor", "raw floor: pyarrow CSV + write_deltalake", RAW_FLOOR, {}, lake_from=files
    )
    naive = ctx.measure(
        "pandas", "naive pandas: read_csv, drop_duplicates, to_parquet", PANDAS, {}, lake_from=files
    )
    peer = ctx.measure(
        "duckdb", "DuckDB: read_csv, DISTINCT, COPY to Parquet", DUCKDB, {}, lake_from=files
    )
    vs_floor = ours.rows_per_s / floor.rows_per_s
    vs_pandas = ours.rows_per_s / naive.rows_per_s
    return Outcome(
        summary=f"{ours.rows_per_s:,.0f} rows/s ({ours.extra['rejected']:,} quarantined)",
        measurements=[ours, floor, naive, peer],
        ratios={
            "vs raw floor": vs_floor,
            "vs naive pandas": vs_pandas,
            "vs DuckDB": ours.rows_per_s / peer.rows_per_s,
        },
        checks=[
            Check("rows/s vs raw floor", vs_floor, ">=", 0.45),
            Check("rows/s vs naive pandas", vs_pandas, ">=", 1.0),
        ],
    )


def memory_bound(ctx: Context, scale: int) -> Outcome:
    """One file of `scale` rows, then of 4x: streaming keeps the peak flat, a full read does not."""
    one = landing(ctx, scale, rows_per_file=scale)
    four = landing(ctx, 4 * scale, rows_per_file=4 * scale)
    ours_1 = ctx.measure("pipeline_1x", "S3 pipeline, 1x (one file)", PIPELINE, {}, lake_from=one)
    ours_4 = ctx.measure("pipeline_4x", "S3 pipeline, 4x (one file)", PIPELINE, {}, lake_from=four)
    floor_1 = ctx.measure(
        "raw_floor_1x", "raw floor (whole-file read), 1x", RAW_FLOOR, {}, lake_from=one
    )
    floor_4 = ctx.measure(
        "raw_floor_4x", "raw floor (whole-file read), 4x", RAW_FLOOR, {}, lake_from=four
    )
    growth = ours_4.peak_rss_mb / ours_1.peak_rss_mb
    floor_growth = floor_4.peak_rss_mb / floor_1.peak_rss_mb
    return Outcome(
        summary=f"peak RSS {ours_1.peak_rss_mb:,.0f} MB at 1x, {ours_4.peak_rss_mb:,.0f} MB at 4x",
        measurements=[ours_1, ours_4, floor_1, floor_4],
        ratios={"peak 4x / 1x": growth, "raw floor peak 4x / 1x": floor_growth},
        checks=[Check("peak RSS 4x / 1x", growth, "<=", 1.2)],
    )
