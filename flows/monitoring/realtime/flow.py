"""The Realtime Analytics flow: one micro-batch from the stored offset to the current version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from flows import samples
from flows.catalog import (
    EVENT_WINDOW_METRICS,
    EVENT_WINDOW_TOP_PRODUCTS,
    EVENTS,
    LATE_EVENTS,
    STREAM_OFFSETS,
)
from flows.core import lake
from flows.core.artifacts import publish_markdown, publish_table
from flows.core.contracts import Table
from flows.core.inputs import provide_inputs, stop
from flows.core.tasks import LAKE_READ, LAKE_WRITE
from flows.monitoring.realtime.offsets import Offset, consumer_name, offset_row
from flows.monitoring.realtime.report import summary_markdown
from flows.monitoring.realtime.transforms import (
    TIME,
    advanced_watermark,
    affected_windows,
    in_windows,
    late_rows,
    split_late,
    top_products,
    window_metrics,
)


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_offset(consumer: str) -> Offset:
    if not lake.exists(STREAM_OFFSETS):
        return Offset(-1, None)
    rows = lake.read(STREAM_OFFSETS, where=pl.col("consumer") == consumer).to_dicts()
    return Offset(rows[0]["version"], rows[0]["watermark"]) if rows else Offset(-1, None)


@task(**LAKE_READ, cache_policy=NO_CACHE)
def source_version() -> int:
    return lake.version(EVENTS)


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_new_events(since: int, until: int) -> pl.DataFrame:
    """Rows of the data files committed after `since` up to `until`."""
    return lake.appended_since(EVENTS, since, until=until)


@task(**LAKE_READ, cache_policy=NO_CACHE)
def unseen(candidates: pl.DataFrame, version: int) -> pl.DataFrame:
    """Drop rows that were already in the table at `version` (files rewritten by a merge or an
    OPTIMIZE come back whole): only events that really arrived late are late."""
    if candidates.is_empty() or version < 0:
        return candidates
    low, high = candidates[TIME].min(), candidates[TIME].max()
    seen = lake.read(EVENTS, columns=["event_id"], version=version,
                     where=pl.col(TIME).is_between(low, high))  # fmt: skip
    return candidates.join(seen, on="event_id", how="anti")


@task(**LAKE_READ, cache_policy=NO_CACHE)
def window_events(windows: list[datetime], window_minutes: int, version: int) -> pl.DataFrame:
    """Every event of the given windows, as of `version` (the time range is pushed down)."""
    return lake.read(EVENTS, where=in_windows(windows, window_minutes), version=version)


@task(**LAKE_WRITE, cache_policy=NO_CACHE, task_run_name="merge-{table.name}")
def merge_into(table: Table, rows: pl.DataFrame) -> lake.WriteResult:
    return lake.merge(table, rows)


@flow(
    name="Realtime Analytics",
    description="Tumbling-window event metrics (count, sum, avg, p95, p99, top products) with a"
    " watermark; late events update their window, too-late ones go to quarantine/late_events.",
)
def realtime_analytics(
    window_minutes: int = 5,
    allowed_lateness_minutes: int = 15,
    top_n: int = 5,
    sample_data: bool | None = None,
    sample_rows: int = 10_000,
) -> dict[str, Any] | State[Any]:
    """Process the events committed since the last run (one micro-batch).

    Args:
        window_minutes: the tumbling window's length.
        allowed_lateness_minutes: how far behind the newest event an event may arrive.
        top_n: products ranked per window.
        sample_data: fill a missing input with sample rows; default: the LAKE_SAMPLE_DATA
            setting (on for a local lake, off on S3 and in deployment runs).
        sample_rows: sample events written if silver/events does not exist.
    """
    logger = get_run_logger()
    reason = provide_inputs([(EVENTS, lambda: samples.events(sample_rows))], sample_data)
    if reason:
        return stop(reason)
    consumer = consumer_name(window_minutes)
    offset = read_offset(consumer)
    version = source_version()
    if version == offset.version:
        logger.info("No new commits on %s since version %d", EVENTS, version)
        return {"from_version": offset.version, "to_version": version, "new_events": 0}

    now = datetime.now(UTC)
    new = read_new_events(offset.version, version)
    on_time, closed = split_late(new, window_minutes=window_minutes, watermark=offset.watermark)
    late = unseen(closed, offset.version)
    windows = affected_windows(on_time, window_minutes=window_minutes)
    events = window_events(windows, window_minutes, version)
    metrics = window_metrics(events, window_minutes=window_minutes)
    metrics = metrics.with_columns(pl.lit(now).alias("computed_at"))
    top = top_products(events, window_minutes=window_minutes, n=top_n)
    top = top.with_columns(pl.lit(now).alias("computed_at"))
    watermark = advanced_watermark(
        offset.watermark, new[TIME], timedelta(minutes=allowed_lateness_minutes)
    )

    merge_into(EVENT_WINDOW_METRICS, metrics)
    merge_into(EVENT_WINDOW_TOP_PRODUCTS, top)
    if not late.is_empty():
        assert offset.watermark is not None  # nothing is late before the first watermark
        rows = late_rows(late, consumer=consumer, window_minutes=window_minutes,
                         watermark=offset.watermark, now=now)  # fmt: skip
        merge_into(LATE_EVENTS, rows)
        logger.warning("%d event(s) arrived after their window closed", late.height)
    merge_into(STREAM_OFFSETS, offset_row(consumer, Offset(version, watermark), now))

    summary = {
        "from_version": offset.version,
        "to_version": version,
        "new_events": new.height,
        "windows_updated": len(windows),
        "late_events": late.height,
        "watermark": watermark.isoformat() if watermark else None,
    }
    logger.info("Micro-batch: %s", summary)
    latest = metrics.sort("window_start", descending=True).head(20)
    publish_table(
        "realtime-window-metrics", latest, description="The latest windows this run recomputed"
    )
    publish_markdown(
        "realtime-analytics-summary",
        summary_markdown(summary, top, source=EVENTS.path),
        description="What this micro-batch read, recomputed and set aside",
    )
    return summary
