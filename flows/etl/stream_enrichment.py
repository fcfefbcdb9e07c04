"""Events enriched with the current product and customer attributes, into gold/enriched_events.

The event-day filter and the column projections are pushed into the Delta scans, so a run reads
only the days it rebuilds and only the columns it needs. An event whose product or customer is
unknown is kept (with product_matched / customer_matched = false) and its key is reported, with
counts, as an artifact: nothing is dropped silently. References are the silver tables, one
current row per key (a later update wins), so an event gets the attributes as of the run.

Incremental: a run rebuilds the days from the last enriched day onward (late events land there)
and replaces exactly those partitions, one mapped task and one commit per day (on threads, or on
a Dask cluster: flows/core/runners.py); `--since` rebuilds from an earlier day, e.g. after a
correction to a reference table. A missing input gets sample data only where LAKE_SAMPLE_DATA
allows it (a local lake by default); otherwise the run stops and says what produces the input.

    python flows/etl/stream_enrichment.py
    python flows/etl/stream_enrichment.py --since 2024-01-01
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from flows import samples
from flows.catalog import CUSTOMERS, ENRICHED_EVENTS, EVENTS, PRODUCTS
from flows.core import lake
from flows.core.artifacts import markdown_table, publish_markdown
from flows.core.cli import run_from_command_line
from flows.core.inputs import provide_inputs, stop
from flows.core.runners import data_parallel_runner
from flows.core.tasks import LAKE_READ, LAKE_WRITE

EVENT_COLUMNS = ("event_id", "event_time", "event_type", "value", "customer_id", "product_id")
PRODUCT_COLUMNS = ("product_id", "name", "category", "price")
CUSTOMER_COLUMNS = ("customer_id", "country", "segment")
REFERENCES = (("products", "product_id", "product_matched"),
              ("customers", "customer_id", "customer_matched"))  # fmt: skip


def enriched_events(
    events: pl.LazyFrame, products: pl.LazyFrame, customers: pl.LazyFrame
) -> pl.LazyFrame:
    """events ⋈ products ⋈ customers (left joins: every event stays, flagged when unmatched).

    A pure function over lazy frames, so a caller's filters and projections on the inputs
    reach the scans; references must hold one row per key (silver tables do).
    """
    product_attributes = products.select(
        "product_id",
        pl.col("name").alias("product_name"),
        "category",
        "price",
        pl.lit(True).alias("product_matched"),
    )
    customer_attributes = customers.select(
        "customer_id", "country", "segment", pl.lit(True).alias("customer_matched")
    )
    return (
        events.select(EVENT_COLUMNS)
        .join(product_attributes, on="product_id", how="left")
        .join(customer_attributes, on="customer_id", how="left")
        .with_columns(
            pl.col("event_time").dt.date().alias("event_date"),
            pl.col("product_matched").fill_null(False),
            pl.col("customer_matched").fill_null(False),
        )
    )


def unmatched_keys(enriched: pl.LazyFrame) -> pl.LazyFrame:
    """Each missing reference key (`reference`, `key`) with the number of events carrying it."""
    return pl.concat(
        [
            enriched.filter(~pl.col(flag) & pl.col(key).is_not_null())
            .group_by(pl.col(key).alias("key"))
            .agg(pl.len().cast(pl.Int64).alias("events"))
            .select(pl.lit(reference).alias("reference"), "key", "events")
            for reference, key, flag in REFERENCES
        ]
    ).sort(["events", "reference", "key"], descending=[True, False, False])


def events_since(start: date | None) -> pl.Expr | None:
    """The event filter for rebuilding from `start` (whole UTC days); None means every event."""
    if start is None:
        return None
    return pl.col("event_time") >= datetime.combine(start, time(), tzinfo=UTC)


def day_window(day: date) -> pl.Expr:
    """The events of one UTC day."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return pl.col("event_time").is_between(start, start + timedelta(days=1), closed="left")


def summed_unmatched(per_day: list[pl.DataFrame]) -> pl.DataFrame:
    """Unmatched keys of several days as one list: events per (reference, key) added up."""
    if not per_day:
        return pl.DataFrame(schema={"reference": pl.String, "key": pl.Int64, "events": pl.Int64})
    return (
        pl.concat(per_day)
        .group_by("reference", "key")
        .agg(pl.col("events").sum())
        .sort(["events", "reference", "key"], descending=[True, False, False])
    )


@task(**LAKE_READ, cache_policy=NO_CACHE)
def rebuild_days(since: date | None) -> tuple[date | None, list[date]]:
    """From `since`, else the last enriched day (it may have late events), else everything:
    where the rebuild starts and each event day from there on (the units mapped in parallel)."""
    start = since
    if start is None and lake.exists(ENRICHED_EVENTS):
        last = lake.scan(ENRICHED_EVENTS).select(pl.col("event_date").max()).collect().item()
        start = last if isinstance(last, date) else None
    events = lake.scan(EVENTS)
    window = events_since(start)
    if window is not None:
        events = events.filter(window)
    days = events.select(pl.col("event_time").dt.date().unique().sort()).collect()
    return start, days.to_series().to_list()


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def enrich_day(day: date) -> tuple[lake.WriteResult, pl.DataFrame]:
    """Replace one day's partition with its enriched events (pushed-down scans, one commit);
    returns the write and the day's unmatched keys."""
    enriched = enriched_events(
        lake.scan(EVENTS).filter(day_window(day)),
        lake.scan(PRODUCTS).select(PRODUCT_COLUMNS),
        lake.scan(CUSTOMERS).select(CUSTOMER_COLUMNS),
    )
    frame, unmatched = pl.collect_all([enriched, unmatched_keys(enriched)])
    return lake.overwrite_partitions(ENRICHED_EVENTS, frame), unmatched


@flow(
    name="Stream Enrichment",
    description="Events joined with current products and customers into gold/enriched_events;"
    " one mapped task per day (threads or Dask); unmatched keys reported, never dropped.",
    task_runner=data_parallel_runner(),
)
def stream_enrichment(
    since: date | None = None, sample_data: bool | None = None, sample_rows: int = 10_000
) -> dict[str, int] | State[Any]:
    """Rebuild the enriched event days from `since` (default: the last enriched day).

    Args:
        since: rebuild from this day (YYYY-MM-DD); default: the last enriched day.
        sample_data: fill missing inputs with sample rows; default: the LAKE_SAMPLE_DATA
            setting (on for a local lake, off on S3 and in deployment runs).
        sample_rows: sample events written if an input table does not exist.
    """
    logger = get_run_logger()
    inputs = [(CUSTOMERS, samples.customers), (PRODUCTS, samples.products),
              (EVENTS, lambda: samples.events(sample_rows))]  # fmt: skip
    reason = provide_inputs(inputs, sample_data)
    if reason:
        return stop(reason)
    start, days = rebuild_days(since)
    lake.create_if_missing(ENRICHED_EVENTS)
    outcomes = [future.result() for future in enrich_day.map(days)]
    unmatched = summed_unmatched([day_unmatched for _, day_unmatched in outcomes])
    missing = unmatched.group_by("reference").agg(pl.col("events").sum())
    counts = dict(zip(missing["reference"], missing["events"], strict=True))
    summary = {
        "events": sum(written.rows for written, _ in outcomes),
        "days": len(days),
        "unmatched_product_events": int(counts.get("products", 0)),
        "unmatched_customer_events": int(counts.get("customers", 0)),
        "unmatched_keys": unmatched.height,
        "version": max((written.version for written, _ in outcomes), default=-1),
    }
    if unmatched.height:
        logger.warning("%d events reference unknown keys: %s", sum(counts.values()), counts)
    publish_markdown(
        "stream-enrichment",
        f"# Enriched events from {start or 'the beginning'}\n\n{summary['events']} events over"
        f" {summary['days']} days; events with an unknown product:"
        f" {summary['unmatched_product_events']}, with an unknown customer:"
        f" {summary['unmatched_customer_events']} (kept, flagged).\n\n## Unknown keys (top 20)\n\n"
        + markdown_table(unmatched.head(20)),
        description="What was enriched and which reference keys are missing",
    )
    return summary


if __name__ == "__main__":
    run_from_command_line(stream_enrichment)
