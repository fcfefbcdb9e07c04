"""The S3 data pipeline's tasks and flow; the command: `flows/etl/s3_data_pipeline.py`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Completed

from flows.catalog import landing_sources
from flows.core import glue, lake, storage
from flows.core.artifacts import Progress
from flows.core.cli import cli
from flows.core.contracts import Table
from flows.core.inputs import allowed_here, stop
from flows.core.lineage import current_run
from flows.core.settings import get_settings
from flows.core.tasks import LAKE_WRITE, retry_if_transient, stage_results
from flows.etl.s3_pipeline import layers, resolution
from flows.etl.s3_pipeline.report import (
    EMPTY_LANDING,
    FAILED_FILE_HINT,
    outcome_message,
    publish_run,
    run_summary,
)
from flows.etl.s3_pipeline.samples import seed_landing
from flows.etl.s3_pipeline.transforms import (
    Conformed,
    FileResult,
    LandingFile,
    Plan,
    checked_landing,
    gold_scope,
    merged_outcomes,
    with_conformed,
)

io_task = task(**LAKE_WRITE, retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE)
"""Lake and landing I/O: transient errors are retried with backoff, a file's content never."""


@io_task
def list_landing(
    landing: str, sources: list[str] | None, retry_failed: str | None, reconform: str | None
) -> Plan:
    """The deliveries under landing/ and what the manifest says about each."""
    return layers.landing_plan(landing, sources, retry_failed, reconform)


@io_task
def ingest(file: LandingFile, run_id: str, batch_rows: int | None) -> FileResult:
    return layers.ingest_file(file, run_id=run_id, batch_rows=batch_rows)


@io_task
def conform_source(
    files: list[LandingFile], batch_rows: int | None, replay: frozenset[str]
) -> tuple[list[Conformed], dict[str, str]]:
    return layers.conform_files(files, batch_rows=batch_rows, replay=replay)


@io_task
def record_files(results: list[FileResult], run_id: str) -> lake.WriteResult:
    return layers.record_manifest(results, run_id)


@io_task
def resolve_rejects(files: list[LandingFile], replay: frozenset[str]) -> list[lake.WriteResult]:
    return resolution.resolve_rejects(files, replay)


@io_task
def build_gold(
    order_dates: set[date], customer_ids: pl.Series, products_changed: bool
) -> list[lake.WriteResult]:
    return layers.refresh_gold(order_dates, customer_ids, products_changed)


@io_task
def register_glue(database: str, tables: list[Table]) -> list[str]:
    """Create or update each existing table in the Glue Data Catalog."""
    return glue.register_tables(database, tables)


@io_task
def landing_is_empty(landing: str) -> bool:
    return not storage.describe_objects(landing)


write_sample_files = io_task(seed_landing)


@flow(
    name="S3 Data Pipeline",
    description="Landing files (CSV, JSON, Parquet, gzip) into bronze, silver and gold Delta"
    " tables, incrementally; rejects quarantined, schema drift reported.",
)
def s3_data_pipeline(
    landing: str = "landing",
    sources: Annotated[list[str] | None, cli("--source")] = None,
    sample_data: bool | None = None,
    glue_database: str | None = None,
    batch_rows: int | None = None,
    retry_failed: Annotated[str | None, cli(const="all", metavar="PATH")] = None,
    reconform: Annotated[str | None, cli(const="all", metavar="SOURCE_OR_PATH")] = None,
) -> State[dict[str, int]]:
    """Ingest new landing files, conform them, refresh gold, publish what happened.

    Args:
        landing: folder under the lake root holding `<source>/<files>`.
        sources: only these sources (table names); default all with a contract.
        sample_data: fill an empty landing folder with sample files (default: LAKE_SAMPLE_DATA);
            a landing folder that holds files never gets any.
        glue_database: register the tables in this Glue database (default LAKE_GLUE_DATABASE).
        batch_rows: rows per streaming batch (default LAKE_BATCH_ROWS).
        retry_failed: parse failed deliveries again: `all` (the option given bare), or one file's
            path under landing.
        reconform: conform done deliveries again from bronze under the current contract (after a
            contract fix): `all` (the option given bare), a source (table) name, or one file's
            path under landing.
    """
    logger = get_run_logger()
    landing, sources = checked_landing(landing, sources, landing_sources())
    run_id = current_run().id
    if landing_is_empty(landing):
        if not allowed_here(sample_data):
            return stop(EMPTY_LANDING.format(landing=landing))
        seeded = write_sample_files(landing)
        logger.info("Landing was empty: wrote %d sample files under %s/", len(seeded), landing)
    work: Plan = stage_results(
        "Listing landing files", [list_landing.submit(landing, sources, retry_failed, reconform)]
    )[0]
    logger.info("%d new, %d to resume, %d to conform again, %d done before, %d ignored",
                len(work.ingest), len(work.resume), len(work.replay), work.already_done,
                len(work.ignored))  # fmt: skip
    for path, why in work.ignored:
        logger.warning("Ignored %s: %s", path, why)

    progress = Progress("s3-pipeline-files", len(work.ingest), "Landing files parsed into bronze")
    # Side by side: flows.core.lake serialises what delta-rs cannot run at once.
    ingesting = [ingest.submit(file, run_id, batch_rows) for file in work.ingest]
    results: list[FileResult] = []
    for future in ingesting:
        results += stage_results("Ingesting landing files", [future])
        progress.advance()
    results += [FileResult(f, "bronze") for f in (*work.resume, *work.replay)]
    replay = frozenset(f.batch_id for f in work.replay)
    if results:
        record_files(results, run_id)

    to_conform = [r.file for r in results if r.status == "bronze"]
    by_source = sorted({f.source for f in to_conform})
    conformed_lists = stage_results(
        "Conforming bronze to silver",
        [conform_source.submit([f for f in to_conform if f.source == s], batch_rows, replay)
         for s in by_source],
    )  # fmt: skip
    done, failed = merged_outcomes(conformed_lists)
    results = with_conformed(results, done, failed)
    if done or failed:
        record_files([r for r in results if r.file.batch_id in done | failed], run_id)

    resolved = resolve_rejects([r.file for r in results if r.file.batch_id in done], replay)
    logger.info("%d quarantined rows resolved", sum(r.updated for r in resolved))
    order_dates, customer_ids, products_changed = gold_scope(results, done)
    gold = build_gold(order_dates, customer_ids, products_changed)
    database = glue_database or get_settings().glue_database
    if database:
        registered = register_glue(database, layers.written_tables(by_source))
        logger.info("Registered %d tables in Glue database %s", len(registered), database)

    publish_run(results, work, list(done.values()))
    summary = run_summary(
        results, list(done.values()), done_before=work.already_done, gold_commits=len(gold)
    )
    logger.info("S3 data pipeline: %s", summary)
    for r in results:
        if r.status == "failed":
            logger.warning("%s. %s", r.error, FAILED_FILE_HINT)
    return Completed(message=outcome_message(summary), data=summary)
