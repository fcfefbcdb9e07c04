"""Orders from a paginated JSON API (or the built-in sample data) into bronze, silver and gold.

The example owns its tables (bronze, silver and quarantine `example_orders`, gold
`example_daily_order_totals`): its sample rows never reach the production flows' silver/orders.
Malformed rows go to quarantine/example_orders with the reason; re-running the same input
changes nothing.

    python flows/examples/basic_etl_pipeline.py                       # sample data, local lake
    python flows/examples/basic_etl_pipeline.py --api-url http://...  # a paginated JSON API
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import httpx
import polars as pl
import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import samples
from flows.catalog import EXAMPLE_DAILY_ORDER_TOTALS, EXAMPLE_ORDERS
from flows.core import lake
from flows.core.artifacts import markdown_table, publish_markdown, publish_table
from flows.core.cli import run_from_command_line
from flows.core.contracts import REASON_COLUMN
from flows.core.http_pages import iterate_pages, records_table
from flows.core.lineage import BATCH_COLUMN, current_run, fingerprint, stamp
from flows.core.tasks import EXTERNAL_SOURCE, LAKE_WRITE


def daily_order_totals(orders: pl.DataFrame) -> pl.DataFrame:
    """Orders and revenue per day and status."""
    return (
        orders.group_by("order_date", "status")
        .agg(pl.len().cast(pl.Int64).alias("orders"), pl.col("amount").sum().alias("revenue"))
        .sort("order_date", "status")
    )


def rejection_reasons(rejects: pa.Table) -> list[dict[str, Any]]:
    """How many rows were rejected for each reason."""
    counts = Counter(rejects.column(REASON_COLUMN).to_pylist()) if rejects.num_rows else Counter()
    return [{"reason": reason, "rows": rows} for reason, rows in counts.most_common()]


@task(**EXTERNAL_SOURCE)
def extract_from_api(api_url: str, per_page: int) -> list[dict[str, Any]]:
    """Every page of the API; each page retries rate limits and server errors itself."""
    with httpx.Client(timeout=30) as client:
        return [r for _, page in iterate_pages(client, api_url, per_page=per_page) for r in page]


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def load_bronze(raw: pa.Table, batch_id: str) -> lake.WriteResult:
    return lake.replace_where(EXAMPLE_ORDERS.bronze, raw, where={BATCH_COLUMN: batch_id})


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def load_silver(valid: pa.Table) -> lake.WriteResult:
    return lake.merge(EXAMPLE_ORDERS, valid)


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def load_quarantine(rejects: pa.Table, batch_id: str) -> lake.WriteResult:
    return lake.replace_where(EXAMPLE_ORDERS.quarantine, rejects, where={BATCH_COLUMN: batch_id})


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def refresh_gold(days: list[date]) -> lake.WriteResult:
    """Rebuild the gold partitions for the days this run touched, from all of silver."""
    touched = lake.read(EXAMPLE_ORDERS, columns=["order_date", "status", "amount"],
                        where=pl.col("order_date").is_in(days))  # fmt: skip
    return lake.overwrite_partitions(EXAMPLE_DAILY_ORDER_TOTALS, daily_order_totals(touched))


@flow(
    name="Basic ETL Pipeline",
    description="Orders from an API or sample data into bronze/silver/gold; rejects quarantined.",
    log_prints=True,
)
def basic_etl_pipeline(
    api_url: str | None = None, rows: int = 1_000, seed: int = 42, per_page: int = 100
) -> dict[str, int]:
    """Extract, validate, load bronze/silver/quarantine, refresh gold, publish a summary.

    Args:
        api_url: a paginated JSON API (`?page=N&per_page=M`); default: the sample data.
        rows: sample orders when there is no API URL.
        seed: the sample data's seed.
        per_page: the API's page size.
    """
    logger = get_run_logger()
    records = (
        extract_from_api(api_url, per_page) if api_url else samples.order_records(rows, seed=seed)
    )
    source = api_url or f"samples.order_records(rows={rows}, seed={seed})"
    batch_id = fingerprint(source, json.dumps(records, sort_keys=True))
    raw = stamp(records_table(records), source=source, batch_id=batch_id,
                run_id=current_run().id, ingested_at=datetime.now(UTC))  # fmt: skip
    logger.info("Extracted %d records from %s (batch %s)", raw.num_rows, source, batch_id)

    bronze = load_bronze(raw, batch_id)
    valid, rejects = EXAMPLE_ORDERS.split(raw)
    silver = load_silver(valid)
    quarantine = load_quarantine(rejects, batch_id)
    days = sorted(set(valid.column("order_date").to_pylist()))
    gold = refresh_gold(days)

    results = [bronze, silver, quarantine, gold]
    publish_table("basic-etl-summary", [r.__dict__ for r in results],
                  description=f"Commits of batch {batch_id}")  # fmt: skip
    reasons = rejection_reasons(rejects)
    publish_markdown(
        "basic-etl-quarantine",
        f"# Quarantined rows: {rejects.num_rows} of {raw.num_rows}\n\n" + markdown_table(reasons),
        description="Why rows were rejected",
    )
    summary = {
        "extracted": raw.num_rows,
        "valid": valid.num_rows,
        "quarantined": rejects.num_rows,
        "inserted": silver.inserted,
        "updated": silver.updated,
        "gold_rows": gold.rows,
    }
    print(f"Basic ETL summary: {summary}")
    return summary


if __name__ == "__main__":
    run_from_command_line(basic_etl_pipeline)
