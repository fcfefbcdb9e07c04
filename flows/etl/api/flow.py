"""The API ingest's tasks and flow; the command is `flows/etl/api_ingest.py`."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict

import httpx
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import samples
from flows.catalog import ingested_table
from flows.core import lake
from flows.core.artifacts import publish_markdown, publish_table
from flows.core.errors import ConfigurationError
from flows.core.http_pages import Record, get_page, records_table
from flows.core.inputs import allowed_here
from flows.core.lineage import fingerprint
from flows.etl.api.pages import page_position, start_page
from flows.etl.api.sample_api import sample_handler, serve
from flows.etl.ingest import Landed, land, landed_totals, read_position, save_position, stamped

SAMPLE_SOURCE = "api:sample-orders"
NO_URL = (
    "no API URL configured: pass --url (a deployment: set its `url` parameter). The built-in"
    " sample API is served only where sample data is allowed (LAKE_SAMPLE_DATA, --sample-data)"
    " and only into a target it created: {reason}"
)


def sample_api_refusal(allowed: bool, target_exists: bool, fed_before: bool) -> str | None:
    """Why the sample API may not feed this run, or None when it may."""
    if not allowed:
        return "sample data is off here"
    if target_exists and not fed_before:
        return "the target table exists and holds data from elsewhere"
    return None


# No Prefect retries: get_page already retries each request and honours Retry-After.
@task(cache_policy=NO_CACHE)
def fetch_page(
    url: str, page: int, per_page: int, attempts: int, backoff_seconds: float
) -> list[Record]:
    with httpx.Client(timeout=30) as client:
        return get_page(
            client,
            url,
            {"page": page, "per_page": per_page},
            attempts=attempts,
            base_seconds=backoff_seconds,
        )


@flow(
    name="API Ingest",
    description="A paginated JSON API into bronze/silver/quarantine page by page, with retries,"
    " backoff and Retry-After; resumes from the last landed page.",
)
def api_ingest(
    url: str | None = None,
    source: str | None = None,
    target: str = "orders",
    per_page: int = 100,
    full_refresh: bool = False,
    attempts: int = 5,
    backoff_seconds: float = 0.5,
    max_pages: int = 10_000,
    sample_data: bool | None = None,
    sample_rows: int = 1_000,
) -> dict[str, int | str]:
    """Ingest `url` into `target` (without a URL, where allowed: a sample orders API).

    Args:
        url: a paginated JSON API (`?page=N&per_page=M`); default: a sample API for this run.
        source: the source's name in lineage and ingest state (default: the URL).
        target: the silver table whose contract the records are cast to and checked against.
        per_page: records asked for per page.
        full_refresh: start again at page 1 instead of after the last landed page.
        attempts: tries per page request before the run fails.
        backoff_seconds: the first retry's delay, doubled each retry (Retry-After wins).
        max_pages: stop after this many pages in one run.
        sample_rows: orders the sample API serves when no URL is given.
        sample_data: without a URL, serve a sample API; default: the LAKE_SAMPLE_DATA setting
            (on for a local lake, off on S3 and in deployment runs).
    """
    logger = get_run_logger()
    silver = ingested_table(target)
    bronze = silver.source_bronze("api")
    if not url:
        fed = read_position(SAMPLE_SOURCE) is not None
        refusal = sample_api_refusal(allowed_here(sample_data), lake.exists(silver), fed)
        if refusal:
            raise ConfigurationError(NO_URL.format(reason=refusal))
    source = source or (f"api:{url}" if url else SAMPLE_SOURCE)
    server = nullcontext(url) if url else serve(sample_handler(samples.order_records(sample_rows)))
    position = None if full_refresh else read_position(source)
    first = start_page(position)
    landed: list[Landed] = []
    with server as base_url:
        for page in range(first, first + max_pages):
            page_records = fetch_page(base_url, page, per_page, attempts, backoff_seconds)
            if not page_records:
                break
            batch_id = fingerprint(source, str(page))
            raw = stamped(records_table(page_records), source=source, batch_id=batch_id)
            landed.append(land(silver, bronze, raw, batch_id))
            position = page_position(page, len(page_records), position)
            save_position(source, position)
            if len(page_records) < per_page:
                break

    summary: dict[str, int | str] = {
        "source": source,
        "first_page": first,
        "pages": len(landed),
        **landed_totals(landed),
        "rows_from_source": position.rows if position else 0,
    }
    logger.info("API ingest summary: %s", summary)
    publish_table("api-ingest-pages", [asdict(r) for r in landed],
                  description=f"Pages landed from {source}")  # fmt: skip
    publish_markdown(
        "api-ingest",
        f"# {source} → {silver.path}\n\nPages {first} to {first + len(landed) - 1}:"
        f" {summary['rows']} rows, {summary['quarantined']} quarantined;"
        f" {summary['rows_from_source']} rows from this source in the lake.",
        description="What this run ingested",
    )
    return summary
