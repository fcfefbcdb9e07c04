"""The pipeline's lake steps: what landing holds against the manifest, a delivery parsed into
bronze, its rows conformed into silver and quarantine, the gold it touched rebuilt, the manifest
updated. Plain functions the flow wraps in tasks, so tests and bench call them without Prefect."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime

import polars as pl
import pyarrow as pa

from flows.catalog import (
    CUSTOMER_LIFETIME_VALUE,
    DAILY_CATEGORY_REVENUE,
    LANDING_FILES,
    ORDERS,
    PRODUCTS,
    landing_sources,
)
from flows.core import lake, storage
from flows.core.contracts import Table
from flows.core.errors import ContentError, ContractViolation, error_kind
from flows.core.lineage import BATCH_COLUMN
from flows.core.settings import get_settings
from flows.etl.s3_pipeline import spool as spools
from flows.etl.s3_pipeline.landing import ParseOptions, ParseRestart, text_batches
from flows.etl.s3_pipeline.report import manifest_rows
from flows.etl.s3_pipeline.resolution import replace_replayed_rejects
from flows.etl.s3_pipeline.spool import Spool, spooled, teed
from flows.etl.s3_pipeline.transforms import (
    Conformed,
    FileResult,
    LandingFile,
    Plan,
    column_name_problem,
    customer_lifetime_value,
    daily_category_revenue,
    landing_files,
    missing_required,
    new_columns,
    no_customers,
    order_scope,
    plan,
    reason_counts,
    stamped_batches,
)


def ingest_file(file: LandingFile, *, run_id: str, batch_rows: int | None = None) -> FileResult:
    """Stream one landing file into bronze in one commit; a delivery already there is skipped.

    A problem with the file's content (unreadable, a column missing or given twice, anything
    `error_kind` calls content) is returned as a failed result, so the file fails alone;
    transient errors are raised, so the caller retries.
    """
    contract = landing_sources()[file.source]
    if file.size == 0:
        return FileResult(file, "empty")
    if file.format is None:
        return FileResult(file, "failed", error=f"{file.path}: not .csv, .jsonl, .json or .parquet")
    rows = batch_rows or get_settings().batch_rows
    options = ParseOptions(rows)
    ingested_at = datetime.now(UTC)
    while True:
        conformed_rows = Spool(contract, rows)
        spool_failures: list[BaseException] = []
        try:
            reader = text_batches(file.path, file.format, options)
            missing = missing_required(contract, reader.schema.names)
            if missing and len(reader.schema) > 2:  # no data columns: nothing parsed
                raise ContractViolation(f"missing required column(s) {missing} for {contract.path}")
            lineage = {"source": file.path, "batch_id": file.batch_id, "run_id": run_id}
            stamped = stamped_batches(reader, **lineage, ingested_at=ingested_at)
            if problem := column_name_problem(stamped.schema.names):
                raise ContentError(problem)
            both = teed(stamped, conformed_rows, spool_failures)
            result = lake.append_once(
                contract.bronze,
                pa.RecordBatchReader.from_batches(stamped.schema, both),
                app_id=f"bronze:{file.batch_id}",
            )
        except ParseRestart as restart:
            conformed_rows.discard()
            options = restart.options
            continue
        except Exception as error:
            conformed_rows.discard()
            if error_kind(error) != "content":
                raise
            return FileResult(file, "failed", error=f"{file.path}: {error}")
        if result.operation == "WRITE" and not spool_failures:
            spools.keep(lake.location(contract.bronze), file.batch_id, conformed_rows)
        else:  # in bronze before, or the rows' conform fails: silver reads bronze back
            conformed_rows.discard()
        drift = new_columns(contract, reader.schema.names)
        status = "bronze" if result.rows or result.operation == "NOOP" else "empty"
        return FileResult(file, status, result.rows, drift, bronze_rows=result.rows)


def conform_file(
    file: LandingFile, *, batch_rows: int | None = None, replay: bool = False
) -> Conformed:
    """One delivery's rows into silver (one commit for the keys it adds, a MERGE per
    `merge_rows` rows of keys silver may hold) and quarantine (one commit).

    The rows come from the spool `ingest_file` filled in this process, else from bronze. Safe
    to repeat after a crash: the merge keeps the newest row per key and the quarantine commit
    is an app transaction of this delivery. A `replay` (after a contract fix) replaces the
    delivery's earlier rejects by what still fails, keeping those that pass now for the flow
    to mark resolved.
    """
    contract = landing_sources()[file.source]
    lake.create_if_missing(contract)  # then concurrent first merges conflict, never duplicate
    # a replayed delivery was not parsed in this run, so it has no spool
    conformed_rows = None if replay else spools.take(lake.location(contract.bronze), file.batch_id)
    if conformed_rows is None:
        bronze = lake.read_batches(
            contract.bronze, where={BATCH_COLUMN: file.batch_id}, batch_rows=batch_rows
        )
        conformed_rows = spooled(contract, bronze, batch_rows or get_settings().batch_rows)
    try:
        return _conformed_into_silver(file, contract, conformed_rows, replay)
    finally:
        conformed_rows.discard()


def _conformed_into_silver(
    file: LandingFile, contract: Table, conformed_rows: Spool, replay: bool
) -> Conformed:
    inserted = updated = 0
    if conformed_rows.valid_rows:
        merged = lake.merge_batches(contract, conformed_rows.valid)
        inserted, updated = merged.inserted, merged.updated
    dates: frozenset[object] = frozenset()
    customers = no_customers()
    if contract.path == ORDERS.path:
        dates, customers = order_scope(conformed_rows.valid(["order_date", "customer_id"]))
    rejects = conformed_rows.rejects()
    if replay:
        replace_replayed_rejects(contract, file.batch_id, rejects)
    elif rejects.num_rows:
        lake.append_once(contract.quarantine, rejects, app_id=f"q:{file.batch_id}")
    return Conformed(
        file.batch_id,
        conformed_rows.valid_rows + rejects.num_rows,
        conformed_rows.valid_rows,
        rejects.num_rows,
        inserted,
        updated,
        reason_counts(rejects),
        dates,
        customers,
    )


def conform_files(
    files: Iterable[LandingFile],
    *,
    batch_rows: int | None = None,
    replay: frozenset[str] = frozenset(),
) -> tuple[list[Conformed], dict[str, str]]:
    """Deliveries in path order (so equal timestamps resolve the same way every run), each
    conformed or, when its content cannot be, failed alone: (conformed, batch id -> error).
    Those whose batch id is in `replay` are conformed again after a contract change."""
    done: list[Conformed] = []
    failed: dict[str, str] = {}
    for file in sorted(files, key=lambda f: f.path):
        try:
            done.append(conform_file(file, batch_rows=batch_rows, replay=file.batch_id in replay))
        except Exception as error:
            if error_kind(error) != "content":
                raise
            failed[file.batch_id] = f"{file.path}: {error}"
    return done, failed


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


def landing_plan(
    landing: str,
    sources: list[str] | None,
    retry_failed: str | None = None,
    reconform: str | None = None,
) -> Plan:
    """The deliveries under landing/ and what the manifest says about each."""
    known = landing_sources()
    wanted = {name: known[name] for name in sources or known}
    files, ignored = landing_files(storage.describe_objects(landing), landing, wanted)
    manifest: dict[str, str] = {}
    if lake.exists(LANDING_FILES):
        seen = lake.read(LANDING_FILES, columns=["batch_id", "status"])
        manifest = dict(zip(seen["batch_id"], seen["status"], strict=True))
    return replace(plan(files, manifest, retry_failed, reconform), ignored=ignored)


def record_manifest(results: list[FileResult], run_id: str) -> lake.WriteResult:
    """Merge what this run did to each file into the `_ops/landing_files` manifest."""
    lake.create_if_missing(LANDING_FILES)
    rows = pa.Table.from_pylist(manifest_rows(results, run_id))
    now = pa.repeat(pa.scalar(datetime.now(UTC), pa.timestamp("us", "UTC")), rows.num_rows)
    return lake.merge(LANDING_FILES, rows.append_column("updated_at", now))


def written_tables(sources: Iterable[str]) -> list[Table]:
    """Every table a run over `sources` writes: their silver, bronze and quarantine tables, gold
    and the manifest (what Glue registers)."""
    touched = [landing_sources()[s] for s in sources]
    tables = [*touched, *(t.bronze for t in touched), *(t.quarantine for t in touched)]
    return [*tables, DAILY_CATEGORY_REVENUE, CUSTOMER_LIFETIME_VALUE, LANDING_FILES]
