"""Where an erasure removes the subject: Delta tables, landing deliveries, derived documents.

Lake I/O only (the matching is in `subject`, the rewriting in `deliveries`); the flow wraps each
call in a task.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from flows.catalog import LANDING_FILES, landing_sources
from flows.core import lake, storage
from flows.core.contracts import Table
from flows.core.lineage import BATCH_COLUMN
from flows.etl.forget.deliveries import without_subject
from flows.etl.forget.subject import Subject, identifying_values, stored_id
from flows.etl.s3_pipeline.landing import file_format
from flows.etl.s3_pipeline.transforms import LandingFile

DELTA_LOG = "/_delta_log/"


@dataclass(frozen=True)
class PlaceErasure:
    """What the erasure did in one place (a table, a landing file, a document)."""

    place: str
    kind: str
    rows_deleted: int = 0
    files_removed: int = 0
    table_version: int | None = None


def existing(tables: Iterable[Table]) -> list[Table]:
    return [table for table in tables if lake.exists(table)]


def subject_values(tables: Iterable[Table], id_column: str, subject_id: int) -> tuple[str, ...]:
    """The values of identifying columns (the email) in the rows holding the subject's id."""
    found = []
    for table in tables:
        schema = lake.scan(table).collect_schema()
        columns = [c for c in table.identifying if c in schema]
        if id_column in schema and columns:
            is_subject = pl.col(id_column).cast(pl.String).str.strip_chars() == str(subject_id)
            rows = lake.read(table, columns=columns, where=is_subject)
            found += [rows[c].cast(pl.String).to_list() for c in columns]
    return identifying_values(found)


def erase_table(table: Table, subject: Subject) -> PlaceErasure:
    """Delete the rows holding the subject's id, or the subject anywhere in a text column, then
    vacuum with retention 0 so no file of the table holds them any more."""
    schema = lake.scan(table).collect_schema()
    ids = {}
    if subject.id_column in schema:
        ids[subject.id_column] = [stored_id(schema[subject.id_column] == pl.String, subject)]
    texts = {name: subject.text_pattern for name, dtype in schema.items() if dtype == pl.String}
    deleted = lake.delete_matching(table, values=ids, patterns=texts).rows if ids or texts else 0
    # Retention 0 with the safety check off: the only way to make deleted rows unrecoverable,
    # also for older files (an update's) that held them. It ends time travel for the table.
    # Full: a writer that lost a commit race leaves its data file behind, in no commit.
    removed = lake.vacuum(table, retention_hours=0, enforce_retention=False, full=True)
    if deleted or removed:
        lake.forget_history(table)
    return PlaceErasure(table.path, "table", deleted, len(removed), lake.version(table))


def erase_landing(landing: str, subject: Subject) -> list[PlaceErasure]:
    """Rewrite every delivery holding the subject without their records, and keep the manifest
    (and bronze's batch ids) pointing at the rewritten file, so it is never ingested again."""
    erased = []
    for delivered in storage.describe_objects(landing):
        kept, removed = without_subject(delivered.path, storage.read_bytes(delivered.path), subject)
        if not removed:
            continue
        storage.write_bytes(delivered.path, kept)
        folder = delivered.path.rsplit("/", 1)[0]
        (now,) = (o for o in storage.describe_objects(folder) if o.path == delivered.path)
        source = delivered.path.removeprefix(f"{landing}/").split("/")[0]
        old, new = (
            LandingFile(o.path, source, o.size, o.tag, file_format(o.path)).batch_id
            for o in (delivered, now)
        )
        relabel_delivery(source, old, new, size=now.size, tag=now.tag)
        erased.append(PlaceErasure(delivered.path, "landing", removed, 1))
    return erased


def relabel_delivery(source: str, old: str, new: str, *, size: int, tag: str) -> None:
    """Move a rewritten delivery's manifest row and raw rows from its old batch id to the new."""
    if lake.exists(LANDING_FILES):
        rows = lake.read(LANDING_FILES, where=pl.col("batch_id") == old)
        if rows.height:
            moved = rows.with_columns(
                batch_id=pl.lit(new),
                size=pl.lit(size, pl.Int64),
                tag=pl.lit(tag),
                updated_at=pl.lit(datetime.now(UTC), pl.Datetime("us", "UTC")),
            )
            lake.merge(LANDING_FILES, moved)
            lake.delete(LANDING_FILES, where={"batch_id": old})
    contract = landing_sources().get(source)
    for raw in (contract.bronze, contract.quarantine) if contract else ():
        if lake.exists(raw) and BATCH_COLUMN in lake.scan(raw).collect_schema():
            rows = lake.read(raw, where=pl.col(BATCH_COLUMN) == old)
            if rows.height:
                lake.append(raw, rows.with_columns(pl.lit(new).alias(BATCH_COLUMN)))
                lake.delete(raw, where={BATCH_COLUMN: old})


def redact_documents(landing: str, subject: Subject) -> list[PlaceErasure]:
    """Redact the subject from every text object that is neither a table's nor a delivery
    (Data Docs, reports, model notes): regenerating them from the erased tables would do too."""
    objects = storage.list_objects("")
    tables = {path.split(DELTA_LOG)[0] + "/" for path in objects if DELTA_LOG in path}
    erased = []
    for path in objects:
        if path.startswith((f"{landing}/", *tables)):
            continue
        data = storage.read_bytes(path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # binary (a model): the verification reads it and says if it holds the subject
        if found := subject.in_text(text):
            storage.write_bytes(path, subject.redact(text).encode())
            erased.append(PlaceErasure(path, "document", found, 1))
    return erased
