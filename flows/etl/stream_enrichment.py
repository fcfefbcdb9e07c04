"""Events enriched with the current product and customer attributes, into gold/enriched_events.

The event-day filter and the column projections are pushed into the Delta scans, so a run reads
only the days it rebuilds and only the columns it needs. An event whose product or customer is
unknown is kept (with product_matched / customer_matched = false) and its key is reported, with
counts, as an artifact: nothing is dropped silently. References are the silver tables, one
current row per key (a later update wins), so an event gets the attributes as of the run.

Incremental: a run rebuilds the days from the last enriched day onward (late events land there)
and replaces exactly those partitions; `--since` rebuilds from an earlier day, e.g. after a
correction to a reference table. A missing input gets sample data only where LAKE_SAMPLE_DATA
allows it (a local lake by default); otherwise the run stops and says what produces the input.

    python flows/etl/stream_enrichment.py
    python flows/etl/stream_enrichment.py --since 2024-01-01
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
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


@task(**LAKE_READ, cache_policy=NO_CACHE)
def rebuild_start(since: date | None) -> date | None:
    """`since`, else the last enriched day (it may have late events), else None: everything."""
    if since is not None or not lake.exists(ENRICHED_EVENTS):
        return since
    last = lake.scan(ENRICHED_EVENTS).select(pl.col("event_date").max()).collect().item()
    return last if isinstance(last, date) else None


@task(**LAKE_READ, cache_policy=NO_CACHE)
def enrich(start: date | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The enriched events from `start` and their unmatched keys, from pushed-down scans."""
    events = lake.scan(EVENTS)
    window = events_since(start)
    if window is not None:
        events = events.filter(window)
    enriched = enriched_events(
        events,
        lake.scan(PRODUCTS).select(PRODUCT_COLUMNS),
        lake.scan(CUSTOMERS).select(CUSTOMER_COLUMNS),
    )
    frame, unmatched = pl.collect_all([enriched, unmatched_keys(enriched)])
    return frame, unmatched


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def write_enriched(enriched: pl.DataFrame) -> lake.WriteResult:
    return lake.overwrite_partitions(ENRICHED_EVENTS, enriched)


@flow(
    name="Stream Enrichment",
    description="Events joined with current products and customers into gold/enriched_events;"
    " unmatched keys reported, never dropped.",
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
    start = rebuild_start(since)
    enriched, unmatched = enrich(start)
    result = write_enriched(enriched) if enriched.height else None
    missing = unmatched.group_by("reference").agg(pl.col("events").sum())
    counts = dict(zip(missing["reference"], missing["events"], strict=True))
    summary = {
        "events": enriched.height,
        "days": enriched["event_date"].n_unique(),
        "unmatched_product_events": int(counts.get("products", 0)),
        "unmatched_customer_events": int(counts.get("customers", 0)),
        "unmatched_keys": unmatched.height,
        "version": result.version if result else -1,
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
