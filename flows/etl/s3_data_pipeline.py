"""Landing files (CSV, JSON lines, JSON arrays, Parquet, gzip) into bronze, silver and gold.

Only files not ingested before are read (the `_ops/landing_files` manifest); each is streamed in
batches into bronze in one idempotent commit (a Delta app transaction per delivery), conformed to
its table's contract into silver (MERGE on the key, later updates win) with rejects in quarantine,
and the gold days and customers it touched are rebuilt. A new column lands in bronze and is
reported; a file missing a required column fails alone. With no landing files, deterministic
samples are written first, so the zero-config run produces every table.

    python flows/etl/s3_data_pipeline.py                           # local lake under ./lake
    LAKE_URI=s3://bucket/lake python flows/etl/s3_data_pipeline.py --glue-database lake
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.catalog import (
    CATALOG,
    CUSTOMER_LIFETIME_VALUE,
    DAILY_CATEGORY_REVENUE,
    LANDING_FILES,
    ORDERS,
    PRODUCTS,
)
from flows.core import lake, storage
from flows.core.artifacts import Progress, markdown_table, publish_markdown, publish_table
from flows.core.contracts import Table
from flows.core.errors import ContractViolation, LakeError, SourceError
from flows.core.lineage import BATCH_COLUMN, current_run
from flows.core.settings import boto3_session, get_settings
from flows.core.tasks import LAKE_WRITE
from flows.etl import _glue
from flows.etl._landing import ParseOptions, ParseRestart, text_batches
from flows.etl._landing_samples import seed_landing
from flows.etl.s3_data_pipeline_transforms import (
    Conformed,
    FileResult,
    LandingFile,
    Plan,
    checked_landing,
    conformed,
    customer_lifetime_value,
    daily_category_revenue,
    distinct_customers,
    drift_report,
    files_report,
    grouped_by_rows,
    landing_files,
    manifest_rows,
    missing_required,
    new_columns,
    plan,
    reason_counts,
    stamped_batches,
)

SOURCES: dict[str, Table] = {t.name: t for t in CATALOG if t.ingested}
io_task = task(**LAKE_WRITE, cache_policy=NO_CACHE)
"""Lake and landing I/O: transient S3 errors are retried with backoff."""


def ingest_file(file: LandingFile, *, run_id: str, batch_rows: int | None = None) -> FileResult:
    """Stream one landing file into bronze in one commit; a delivery already there is skipped.

    Data problems (unreadable file, missing required column) are returned as a failed result;
    I/O errors are raised, so the caller retries.
    """
    contract = SOURCES[file.source]
    if file.size == 0:
        return FileResult(file, "empty")
    if file.format is None:
        return FileResult(file, "failed", error=f"{file.path}: not .csv, .jsonl, .json or .parquet")
    rows = batch_rows or get_settings().batch_rows
    options = ParseOptions(rows)
    ingested_at = datetime.now(UTC)
    while True:
        try:
            reader = text_batches(file.path, file.format, options)
            missing = missing_required(contract, reader.schema.names)
            if missing and len(reader.schema) > 2:  # no data columns: nothing parsed
                raise ContractViolation(f"missing required column(s) {missing} for {contract.path}")
            lineage = {"source": file.path, "batch_id": file.batch_id, "run_id": run_id}
            stamped = stamped_batches(reader, **lineage, ingested_at=ingested_at)
            result = lake.append_once(contract.bronze, stamped, app_id=f"bronze:{file.batch_id}")
        except ParseRestart as restart:
            options = restart.options
            continue
        except (SourceError, ContractViolation) as error:
            return FileResult(file, "failed", error=f"{file.path}: {error}")
        drift = new_columns(contract, reader.schema.names)
        status = "bronze" if result.rows or result.operation == "NOOP" else "empty"
        return FileResult(file, status, result.rows, drift, bronze_rows=result.rows)


def conform_file(file: LandingFile, *, batch_rows: int | None = None) -> Conformed:
    """One delivery's bronze rows into silver (a MERGE per `merge_rows` valid rows) and
    quarantine (one commit).

    Safe to repeat after a crash: the merge keeps the newest row per key and the quarantine
    commit is an app transaction of this delivery.
    """
    contract = SOURCES[file.source]
    lake.create_if_missing(contract)  # then concurrent first merges conflict, never duplicate
    valid_rows = inserted = updated = 0
    rejected: list[pa.Table] = []
    dates: set[object] = set()
    customers: list[pl.Series] = []
    batches = lake.read_batches(
        contract.bronze, where={BATCH_COLUMN: file.batch_id}, batch_rows=batch_rows
    )
    splits = (conformed(contract, pa.Table.from_batches([batch])) for batch in batches)
    for valid, group_rejects in grouped_by_rows(splits, get_settings().merge_rows):
        valid_rows += valid.num_rows
        rejected.extend(group_rejects)
        if valid.num_rows:
            merged = lake.merge(contract, valid)
            inserted, updated = inserted + merged.inserted, updated + merged.updated
        if contract is ORDERS:
            dates.update(valid.column("order_date").unique().to_pylist())
            customers.append(pl.Series("customer_id", valid.column("customer_id")).unique())
    rejects = pl.concat([pl.DataFrame(pl.from_arrow(r)) for r in rejected], how="diagonal_relaxed")
    if rejects.height:
        lake.append_once(contract.quarantine, rejects.to_arrow(), app_id=f"q:{file.batch_id}")
    return Conformed(
        file.batch_id,
        valid_rows + rejects.height,
        valid_rows,
        rejects.height,
        inserted,
        updated,
        reason_counts(rejects.to_arrow()),
        frozenset(dates),
        distinct_customers(customers),
    )


def refresh_gold(
    order_dates: set[date], customer_ids: pl.Series, products_changed: bool
) -> list[lake.WriteResult]:
    """Rebuild the gold days and customers silver changes touched (all days if products did)."""
    if not lake.exists(ORDERS) or not (order_dates or len(customer_ids) or products_changed):
        return []
    columns = ["order_date", "customer_id", "product_id", "quantity", "amount", "status"]
    days = None if products_changed else pl.col("order_date").is_in(sorted(order_dates))
    products = (
        lake.read(PRODUCTS, columns=["product_id", "category"])
        if lake.exists(PRODUCTS)
        else pl.DataFrame(schema={"product_id": pl.Int64, "category": pl.String})
    )
    by_day = daily_category_revenue(lake.read(ORDERS, columns=columns, where=days), products)
    touched = pl.col("customer_id").is_in(customer_ids.implode())
    by_customer = customer_lifetime_value(lake.read(ORDERS, columns=columns, where=touched))
    for table in (DAILY_CATEGORY_REVENUE, CUSTOMER_LIFETIME_VALUE):
        lake.create_if_missing(table)
    return [
        lake.overwrite_partitions(DAILY_CATEGORY_REVENUE, by_day),
        lake.merge(CUSTOMER_LIFETIME_VALUE, by_customer),
    ]


@io_task
def list_landing(landing: str, sources: list[str] | None) -> Plan:
    """The deliveries under landing/ and what the manifest says about each."""
    wanted = {name: SOURCES[name] for name in sources or SOURCES if name in SOURCES}
    files, ignored = landing_files(storage.describe_objects(landing), landing, wanted)
    manifest: dict[str, str] = {}
    if lake.exists(LANDING_FILES):
        seen = lake.read(LANDING_FILES, columns=["batch_id", "status"])
        manifest = dict(zip(seen["batch_id"], seen["status"], strict=True))
    return replace(plan(files, manifest), ignored=ignored)


@io_task
def ingest(file: LandingFile, run_id: str, batch_rows: int | None) -> FileResult:
    return ingest_file(file, run_id=run_id, batch_rows=batch_rows)


@io_task
def conform_source(files: list[LandingFile], batch_rows: int | None) -> list[Conformed]:
    """A source's deliveries in path order, so equal timestamps resolve the same way every run."""
    return [conform_file(f, batch_rows=batch_rows) for f in sorted(files, key=lambda f: f.path)]


@io_task
def record_files(results: list[FileResult], run_id: str) -> lake.WriteResult:
    lake.create_if_missing(LANDING_FILES)
    rows = pa.Table.from_pylist(manifest_rows(results, run_id))
    now = pa.repeat(pa.scalar(datetime.now(UTC), pa.timestamp("us", "UTC")), rows.num_rows)
    return lake.merge(LANDING_FILES, rows.append_column("updated_at", now))


@io_task
def build_gold(
    order_dates: set[date], customer_ids: pl.Series, products_changed: bool
) -> list[lake.WriteResult]:
    return refresh_gold(order_dates, customer_ids, products_changed)


@io_task
def register_glue(database: str, tables: list[Table]) -> list[str]:
    """Create or update each existing table in the Glue Data Catalog."""
    inputs = [
        _glue.glue_table_input(
            f"{t.layer.strip('_')}_{t.name}",
            lake.location(t),
            pa.schema(lake.open_table(t).schema().to_arrow()),
            t.partition_by,
            t.description,
        )
        for t in tables
        if lake.exists(t)
    ]
    return _glue.register(boto3_session(get_settings()).client("glue"), database, inputs)


@io_task
def seed_samples_if_empty(landing: str, seed_samples: bool | None) -> list[str]:
    empty = not storage.describe_objects(landing)
    return seed_landing(landing) if seed_samples or (seed_samples is None and empty) else []


def _stage(description: str, futures: list[Any]) -> list[Any]:
    """Wait for mapped tasks; an I/O failure that outlived the retries becomes one clear error."""
    try:
        return [future.result() for future in futures]
    except LakeError:
        raise
    except Exception as error:
        raise SourceError(
            f"{description} failed after {LAKE_WRITE['retries']} retries: {error}. Nothing"
            " partial is visible (each delivery is one Delta commit); re-run to finish."
        ) from error


@flow(
    name="S3 Data Pipeline",
    description="Landing files (CSV, JSON, Parquet, gzip) into bronze, silver and gold Delta"
    " tables, incrementally; rejects quarantined, schema drift reported.",
)
def s3_data_pipeline(
    landing: str = "landing",
    sources: list[str] | None = None,
    seed_samples: bool | None = None,
    glue_database: str | None = None,
    batch_rows: int | None = None,
) -> dict[str, int]:
    """Ingest new landing files, conform them, refresh gold, publish what happened.

    Args:
        landing: folder under the lake root holding `<source>/<files>`.
        sources: only these sources (table names); default all with a contract.
        seed_samples: write sample files first; default: only when landing is empty.
        glue_database: register the tables in this Glue database (default LAKE_GLUE_DATABASE).
        batch_rows: rows per streaming batch (default LAKE_BATCH_ROWS).
    """
    logger = get_run_logger()
    landing, sources = checked_landing(landing, sources)
    run_id = current_run().id
    seeded = seed_samples_if_empty(landing, seed_samples)
    if seeded:
        logger.info("Landing was empty: wrote %d sample files under %s/", len(seeded), landing)
    work: Plan = _stage("Listing landing files", [list_landing.submit(landing, sources)])[0]
    logger.info("%d new, %d to resume, %d done before, %d ignored", len(work.ingest),
                len(work.resume), work.already_done, len(work.ignored))  # fmt: skip

    progress = Progress("s3-pipeline-files", len(work.ingest), "Landing files parsed into bronze")
    results: list[FileResult] = []
    # One delivery at a time: a streaming write pulls its batches from Python on delta-rs's
    # runtime while another delta-rs call in this process can block that runtime holding the
    # GIL; run side by side they deadlocked (seen once in CI).
    for file in work.ingest:
        results += _stage("Ingesting landing files", [ingest.submit(file, run_id, batch_rows)])
        progress.advance()
    results += [FileResult(f, "bronze") for f in work.resume]
    if results:
        record_files(results, run_id)

    to_conform = [r.file for r in results if r.status == "bronze"]
    by_source = sorted({f.source for f in to_conform})
    conformed_lists = _stage(
        "Conforming bronze to silver",
        [conform_source.submit([f for f in to_conform if f.source == s], batch_rows)
         for s in by_source],
    )  # fmt: skip
    done = {c.batch_id: c for batch in conformed_lists for c in batch}
    results = [
        replace(r, status="done", quarantined=c.quarantined, bronze_rows=c.bronze_rows)
        if (c := done.get(r.file.batch_id))
        else r
        for r in results
    ]
    if done:
        record_files([r for r in results if r.status == "done"], run_id)

    orders_done = [c for c in done.values() if c.order_dates or len(c.customer_ids)]
    products_changed = any(
        c.valid for r in results if r.file.source == "products" and (c := done.get(r.file.batch_id))
    )
    gold = build_gold(
        {d for c in orders_done for d in c.order_dates if isinstance(d, date)},
        distinct_customers([c.customer_ids for c in orders_done]),
        products_changed,
    )
    database = glue_database or get_settings().glue_database
    if database:
        touched = [SOURCES[s] for s in by_source]
        tables = [*touched, *(t.bronze for t in touched), *(t.quarantine for t in touched)]
        registered = register_glue(database, [*tables, DAILY_CATEGORY_REVENUE,
                                              CUSTOMER_LIFETIME_VALUE, LANDING_FILES])  # fmt: skip
        logger.info("Registered %d tables in Glue database %s", len(registered), database)

    reasons = Counter[str]()
    for c in done.values():
        reasons.update(c.reasons)
    publish_table(
        "s3-pipeline-files",
        files_report(results, work.ignored),
        description=f"{len(results)} files this run; {work.already_done} done before",
    )
    publish_markdown(
        "s3-pipeline-quarantine",
        f"# Quarantined rows: {sum(reasons.values())}\n\n"
        + markdown_table([{"reason": k, "rows": v} for k, v in reasons.most_common()]),
        description="Why rows were rejected into quarantine/<table>",
    )
    publish_markdown("s3-pipeline-drift", drift_report(results), description="Schema drift")
    summary = {
        "files_ingested": sum(r.status in ("done", "bronze") for r in results),
        "files_empty": sum(r.status == "empty" for r in results),
        "files_failed": sum(r.status == "failed" for r in results),
        "files_done_before": work.already_done,
        "rows_parsed": sum(r.rows for r in results),
        "rows_conformed": sum(c.bronze_rows for c in done.values()),
        "rows_valid": sum(c.valid for c in done.values()),
        "rows_quarantined": sum(c.quarantined for c in done.values()),
        "gold_commits": len(gold),
    }
    logger.info("S3 data pipeline: %s", summary)
    for r in results:
        if r.status == "failed":
            logger.error("%s", r.error)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=s3_data_pipeline.description)
    parser.add_argument("--landing", default="landing", help="landing folder under the lake root")
    parser.add_argument("--source", action="append", dest="sources", help="only this source")
    seed = parser.add_mutually_exclusive_group()
    seed.add_argument("--seed-samples", action="store_true", default=None,
                      help="write sample files first (default: when landing is empty)")  # fmt: skip
    seed.add_argument("--no-seed-samples", action="store_false", dest="seed_samples")
    parser.add_argument("--glue-database", help="register the tables in this Glue database")
    parser.add_argument("--batch-rows", type=int, help="rows per batch (LAKE_BATCH_ROWS)")
    args = parser.parse_args()
    s3_data_pipeline(
        landing=args.landing,
        sources=args.sources,
        seed_samples=args.seed_samples,
        glue_database=args.glue_database,
        batch_rows=args.batch_rows,
    )


if __name__ == "__main__":
    main()
