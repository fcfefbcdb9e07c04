"""Case 12: silver/orders' files after the S3 pipeline ingests every delivery, then compaction."""

from __future__ import annotations

from bench.cases.ingest import landing
from bench.harness import Context, Outcome


def files_after_compaction(ctx: Context, scale: int) -> Outcome:
    run = ctx.measure(
        "compaction",
        "S3 pipeline ingest into silver/orders, then compaction (table_maintenance's default size)",
        "bench.variants.layout:ingest_then_compact",
        {},
        lake_from=landing(ctx, scale),
    )
    found = run.extra
    return Outcome(
        summary=(
            f"{found['files_before']:,} files of {found['mean_file_mb_before']:.2f} MB →"
            f" {found['files_after']:,} of {found['mean_file_mb_after']:.2f} MB (compaction"
            f" {run.seconds:.2f} s); full read {found['read_seconds_before']:.2f} s →"
            f" {found['read_seconds_after']:.2f} s"
        ),
        measurements=[run],
        ratios={
            "read speed-up after compaction": found["read_seconds_before"]
            / found["read_seconds_after"],
            "one-day read speed-up after compaction": found["day_read_seconds_before"]
            / found["day_read_seconds_after"],
        },
        note=(
            "measured on silver/orders (partitioned by order_date) after the S3 pipeline ingested"
            " case 1's landing files: data files and their mean size, a full read and a read"
            " filtered to one order_date, before and after one compaction with no target size"
            " (delta.targetFileSize, else delta-rs's 100 MB), as table_maintenance runs it."
            " Seconds and rows/s are the compaction's; each read is the fastest of three in the"
            " ingest's process."
        ),
    )
