"""GDPR erasure: delete one customer's rows from every lake table that holds them, then vacuum.

The catalog says which tables carry `customer_id` (and their raw bronze and quarantine siblings);
each is checked at run time. After the delete, a vacuum with retention 0 removes the files that
still held the rows, so the data is physically gone (and time travel before the erasure ends).
`_ops/erasures` records who asked, when, which tables and how many rows; never the data.

    python flows/etl/forget_subject.py --customer-id 42 --requested-by dpo@example.com
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.catalog import ERASURES, physical_tables
from flows.core import lake
from flows.core.artifacts import markdown_table, publish_markdown
from flows.core.cli import run_from_command_line
from flows.core.contracts import Table
from flows.core.lineage import current_run, fingerprint
from flows.core.tasks import LAKE_READ, LAKE_WRITE

SUBJECT_COLUMN = "customer_id"


@dataclass(frozen=True)
class TableErasure:
    """What the erasure did to one table."""

    table: str
    rows_deleted: int
    files_removed: int
    table_version: int


def erasure_candidates(tables: Iterable[Table], column: str) -> list[Table]:
    """Tables that declare `column`, or are schema-on-read (their columns are read at run time)."""
    return [table for table in tables if table.schema is None or column in table.schema.names]


def subject_value(column_type: pl.DataType, subject_id: int) -> int | str:
    """The id as the column stores it: raw layers keep delivered values as strings."""
    return str(subject_id) if column_type == pl.String else subject_id


def subject_ref(column: str, subject_id: int) -> str:
    """A pseudonym for the log: it proves which request was served without storing the id."""
    return fingerprint("erasure-subject", column, str(subject_id))


def erasure_records(
    erasures: Iterable[TableErasure],
    *,
    erasure_id: str,
    reference: str,
    requested_by: str,
    request_ref: str,
    run_id: str,
    erased_at: datetime,
) -> pl.DataFrame:
    """One `_ops/erasures` row per table touched."""
    return pl.DataFrame(
        [
            {
                **asdict(erasure),
                "erasure_id": erasure_id,
                "subject_ref": reference,
                "requested_by": requested_by,
                "request_ref": request_ref,
                "run_id": run_id,
                "erased_at": erased_at,
            }
            for erasure in erasures
        ],
        schema_overrides={"erased_at": pl.Datetime("us", "UTC")},
    )


@task(**LAKE_READ, cache_policy=NO_CACHE)
def holding_tables(candidates: list[Table], column: str) -> list[tuple[Table, pl.DataType]]:
    """The candidates that exist and have `column`, with the column's stored type."""
    found = []
    for table in candidates:
        if lake.exists(table):
            schema = lake.scan(table).collect_schema()
            if column in schema:
                found.append((table, schema[column]))
    return found


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def erase(table: Table, column: str, value: int | str) -> TableErasure:
    """Delete the subject's rows and vacuum the files that held them."""
    deleted = lake.delete(table, where={column: value})
    # Retention 0 with the safety check off: the only way to make deleted rows unrecoverable.
    # It also ends time travel for this table; run erasures when no writer is active.
    removed = lake.vacuum(table, retention_hours=0, enforce_retention=False)
    return TableErasure(table.path, deleted.rows, len(removed), lake.version(table))


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def record_erasure(records: pl.DataFrame) -> lake.WriteResult:
    return lake.append(ERASURES, records)


@flow(
    name="Forget Subject",
    description="GDPR erasure: delete a customer's rows from every table holding them, vacuum,"
    " record it in _ops/erasures.",
)
def forget_subject(
    customer_id: int, requested_by: str, request_ref: str = ""
) -> list[TableErasure]:
    """Erase `customer_id` everywhere and record who asked for it.

    Args:
        customer_id: the subject to erase.
        requested_by: who asked for the erasure (recorded).
        request_ref: the ticket or request id (recorded).
    """
    logger = get_run_logger()
    candidates = erasure_candidates(physical_tables(), SUBJECT_COLUMN)
    holders = holding_tables(candidates, SUBJECT_COLUMN)
    futures = [
        erase.submit(table, SUBJECT_COLUMN, subject_value(stored, customer_id))
        for table, stored in holders
    ]
    erasures = [future.result() for future in futures]
    run = current_run()
    erased_at = datetime.now(UTC)
    reference = subject_ref(SUBJECT_COLUMN, customer_id)
    erasure_id = fingerprint(reference, run.id, erased_at.isoformat())
    if erasures:
        record_erasure(
            erasure_records(
                erasures,
                erasure_id=erasure_id,
                reference=reference,
                requested_by=requested_by,
                request_ref=request_ref,
                run_id=run.id,
                erased_at=erased_at,
            )
        )
    deleted = sum(e.rows_deleted for e in erasures)
    logger.info(
        "Erasure %s: %d rows deleted from %d of %d candidate tables",
        erasure_id,
        deleted,
        sum(e.rows_deleted > 0 for e in erasures),
        len(candidates),
    )
    publish_markdown(
        "forget-subject",
        f"# Erasure {erasure_id}\n\nSubject `{reference}` (a pseudonym), requested by"
        f" {requested_by or 'unknown'} ({request_ref or 'no reference'}): {deleted} rows deleted,"
        f" files vacuumed with retention 0.\n\n" + markdown_table([asdict(e) for e in erasures]),
        description="What the erasure deleted, per table",
    )
    return erasures


if __name__ == "__main__":
    run_from_command_line(forget_subject)
