"""The evidence of an erasure: `_ops/erasures` rows and the certificate (pure functions).

Both name places, counts and the verification's result; the subject only by its pseudonym.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import polars as pl

from flows.core.artifacts import markdown_table
from flows.core.storage import VersionCleanup
from flows.etl.forget.places import PlaceErasure
from flows.etl.forget.verify import Verification


@dataclass(frozen=True)
class Request:
    """Who asked, for whom, and which run served it."""

    erasure_id: str
    subject_ref: str
    requested_by: str
    request_ref: str
    run_id: str
    erased_at: datetime


@dataclass(frozen=True)
class Evidence:
    """What the erasure can show: the request, the object versions, the verification."""

    request: Request
    cleanup: VersionCleanup
    verification: Verification
    retention_days: int
    """How long the bucket keeps noncurrent versions (when it refused deleting them)."""

    @property
    def copies_until(self) -> datetime | None:
        """Until when noncurrent copies remain: None once deleted, else the bucket's retention."""
        if not self.cleanup.refused:
            return None
        return self.request.erased_at + timedelta(days=self.retention_days)

    @property
    def verified(self) -> bool:
        return self.verification.occurrences == 0


def erasure_records(places: Iterable[PlaceErasure], evidence: Evidence) -> pl.DataFrame:
    """One `_ops/erasures` row per place checked, one for object versions, one for the scan."""
    deleted = evidence.cleanup.deleted
    rows = [
        *(asdict(place) for place in places),
        {"place": "object versions", "kind": "versions", "files_removed": deleted},
        {"place": "whole lake", "kind": "verification"},
    ]
    common = {
        **asdict(evidence.request),
        "versions_deleted": deleted,
        "copies_until": evidence.copies_until,
        "objects_checked": evidence.verification.objects_checked,
        "occurrences_left": evidence.verification.occurrences,
        "verified": evidence.verified,
    }
    return pl.DataFrame(
        [
            {
                "rows_deleted": 0,
                "files_removed": 0,
                "table_version": None,
                **{("table" if k == "place" else k): v for k, v in row.items()},
                **common,
            }
            for row in rows
        ],
        schema_overrides={
            "erased_at": pl.Datetime("us", "UTC"),
            "copies_until": pl.Datetime("us", "UTC"),
            "table_version": pl.Int64,
        },
    )


def certificate(places: list[PlaceErasure], evidence: Evidence) -> str:
    """The markdown a data protection officer files: what was erased where, and the proof."""
    request, verification, until = evidence.request, evidence.verification, evidence.copies_until
    removed = [p for p in places if p.rows_deleted or p.files_removed]
    verdict = (
        f"**Verified: no trace of the subject** in {verification.objects_checked} objects read"
        " directly (every version on S3)."
        if evidence.verified
        else f"**NOT verified: {verification.occurrences} occurrences remain** in: "
        + ", ".join(f"`{f.location}` ({f.occurrences})" for f in verification.findings)
    )
    versions = (
        f"Noncurrent object versions deleted: {evidence.cleanup.deleted}."
        if until is None
        else f"The bucket refused deleting object versions: noncurrent copies remain until"
        f" {until:%Y-%m-%d} (its retention)."
    )
    return (
        f"# Erasure certificate {request.erasure_id}\n\n"
        f"- Subject: `{request.subject_ref}` (a pseudonym of the id)\n"
        f"- Requested by: {request.requested_by or 'unknown'}"
        f" ({request.request_ref or 'no reference'})\n"
        f"- Erased at: {request.erased_at:%Y-%m-%d %H:%M:%S} UTC, flow run `{request.run_id}`\n"
        f"- Places checked: {len(places)}; holding the subject: {len(removed)}"
        f" ({sum(p.rows_deleted for p in places)} records removed)\n\n"
        f"{verdict}\n\n{versions}\n\n## Where the subject was removed\n\n"
        + markdown_table([asdict(p) for p in removed])
    )
