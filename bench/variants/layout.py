"""Case 12 work: silver/orders' files after the S3 pipeline's ingest, then after compaction."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

import polars as pl

from bench.variants.ingest import pipeline
from flows.catalog import ORDERS
from flows.core import lake

MB = 1e6
READS = 3
"""Reads per figure, the fastest kept: the first read in a process also pays its warm-up."""


def _fastest_seconds(read: Callable[[], pl.DataFrame]) -> float:
    timings = []
    for _ in range(READS):
        started = perf_counter()
        read()
        timings.append(perf_counter() - started)
    return min(timings)


def _files_and_reads(suffix: str) -> dict[str, Any]:
    """silver/orders' file count and mean size, a full read's and one day's read's seconds."""
    layout = lake.layout(ORDERS)
    day = lake.read(ORDERS, columns=["order_date"])["order_date"].min()
    return {
        f"files_{suffix}": layout.data_files,
        f"mean_file_mb_{suffix}": layout.data_bytes / layout.data_files / MB,
        f"read_seconds_{suffix}": _fastest_seconds(lambda: lake.read(ORDERS)),
        f"day_read_seconds_{suffix}": _fastest_seconds(
            lambda: lake.read(ORDERS, where=pl.col("order_date") == day)
        ),
    }


def ingest_then_compact(params: dict[str, Any]) -> dict[str, Any]:
    """Every landing file into silver, then one compaction as table_maintenance runs it."""
    ingested = pipeline({})
    before = _files_and_reads("before")
    started = perf_counter()
    # No target size, as table_maintenance calls it: delta.targetFileSize, else delta-rs's 100 MB.
    compaction = lake.compact(ORDERS)
    seconds = perf_counter() - started
    return {
        "seconds": seconds,
        "rows": ingested["silver_rows"],
        "ingest_seconds": ingested["seconds"],
        "silver_commits": ingested["silver_commits"],
        **before,
        **_files_and_reads("after"),
        "files_compacted": compaction.files_removed,
    }
