"""The erasure's tasks and flow; the command: `flows/etl/forget_subject.py`."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.catalog import ERASURES, physical_tables
from flows.core import lake, storage
from flows.core.artifacts import publish_markdown
from flows.core.contracts import Table
from flows.core.errors import ErasureIncomplete
from flows.core.lineage import current_run, fingerprint
from flows.core.settings import get_settings
from flows.core.tasks import LAKE_READ, LAKE_WRITE
from flows.etl.forget import places, verify
from flows.etl.forget.places import PlaceErasure
from flows.etl.forget.record import Evidence, Request, certificate, erasure_records
from flows.etl.forget.subject import Subject

SUBJECT_COLUMN = "customer_id"

read_task = task(**LAKE_READ, cache_policy=NO_CACHE)
write_task = task(**LAKE_WRITE, cache_policy=NO_CACHE)


@read_task
def existing_tables() -> list[Table]:
    return places.existing(physical_tables())


@read_task
def identify(tables: list[Table], customer_id: int) -> Subject:
    """The subject with the identifying values (the email) their rows hold."""
    values = places.subject_values(tables, SUBJECT_COLUMN, customer_id)
    return Subject(SUBJECT_COLUMN, customer_id, values)


@write_task
def erase_table(table: Table, subject: Subject) -> PlaceErasure:
    return places.erase_table(table, subject)


@write_task
def erase_landing(landing: str, subject: Subject) -> list[PlaceErasure]:
    return places.erase_landing(landing, subject)


@write_task
def redact_documents(landing: str, subject: Subject) -> list[PlaceErasure]:
    return places.redact_documents(landing, subject)


@write_task
def delete_old_versions(erased: list[PlaceErasure]) -> storage.VersionCleanup:
    """Noncurrent versions of every place the erasure changed, deleted by version id."""
    changed = [p for p in erased if p.rows_deleted or p.files_removed]
    return storage.delete_noncurrent_versions(
        p.place + "/" if p.kind == "table" else p.place for p in changed
    )


@read_task
def verify_erasure(subject: Subject) -> verify.Verification:
    return verify.scan(get_settings(), subject)


@write_task
def record_erasure(records: pl.DataFrame) -> lake.WriteResult:
    lake.add_missing_columns(ERASURES)  # a lake erased before the evidence columns existed
    return lake.append(ERASURES, records)


@flow(
    name="Forget Subject",
    description="GDPR erasure of a customer everywhere the lake put their data (tables, landing"
    " files, raw text, documents, object versions), verified by an independent scan, recorded in"
    " _ops/erasures with a certificate.",
)
def forget_subject(
    customer_id: int, requested_by: str, request_ref: str = "", landing: str = "landing"
) -> list[PlaceErasure]:
    """Erase `customer_id` everywhere, prove it, and record who asked for it.

    Args:
        customer_id: the subject to erase.
        requested_by: who asked for the erasure (recorded).
        request_ref: the ticket or request id (recorded).
        landing: the folder under the lake root holding the deliveries.
    """
    logger = get_run_logger()
    tables = existing_tables()
    subject = identify(tables, customer_id)
    futures = [erase_table.submit(table, subject) for table in tables]
    erased = [future.result() for future in futures]
    erased += erase_landing(landing, subject)
    erased += redact_documents(landing, subject)
    cleanup = delete_old_versions(erased)
    verification = verify_erasure(subject)
    run = current_run()
    erased_at = datetime.now(UTC)
    request = Request(
        fingerprint(subject.reference, run.id, erased_at.isoformat()),
        subject.reference,
        requested_by,
        request_ref,
        run.id,
        erased_at,
    )
    evidence = Evidence(request, cleanup, verification, get_settings().noncurrent_version_days)
    if tables or verification.findings:
        record_erasure(erasure_records(erased, evidence))
    publish_markdown(
        "forget-subject",
        certificate(erased, evidence),
        description="Erasure certificate: where the subject was removed, and the verification",
    )
    logger.info(
        "Erasure %s: %d records removed from %d of %d places; %d objects verified, %d"
        " occurrences left",
        request.erasure_id,
        sum(p.rows_deleted for p in erased),
        sum(p.rows_deleted > 0 for p in erased),
        len(erased),
        verification.objects_checked,
        verification.occurrences,
    )
    if verification.findings:
        where = ", ".join(f.location for f in verification.findings)
        raise ErasureIncomplete(f"the subject is still found in: {where}")
    return erased
