"""Who wrote a row or a commit: the Prefect flow run, stamped on rows and in commit metadata."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

SOURCE_COLUMN = "_source"
BATCH_COLUMN = "_batch_id"
INGESTED_AT_COLUMN = "_ingested_at"
RUN_COLUMN = "_run_id"


@dataclass(frozen=True)
class RunInfo:
    """The Prefect flow run doing the work; `id` is "local" outside one."""

    id: str
    flow_name: str
    run_name: str

    def commit_metadata(self) -> dict[str, str]:
        return {
            "prefect.flow_run_id": self.id,
            "prefect.flow_name": self.flow_name,
            "prefect.flow_run_name": self.run_name,
        }


def current_run() -> RunInfo:
    from prefect.runtime import flow_run

    return RunInfo(
        id=str(flow_run.id or "local"),
        flow_name=str(flow_run.flow_name or ""),
        run_name=str(flow_run.name or ""),
    )


def fingerprint(*parts: bytes | str) -> str:
    """A stable id for a delivery (file name + content digest, a page, a query window)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()[:24]


def stamp(
    batch: pa.Table, *, source: str, batch_id: str, run_id: str, ingested_at: datetime
) -> pa.Table:
    """Add the lineage columns every bronze row carries."""
    columns = {
        SOURCE_COLUMN: pa.scalar(source, pa.string()),
        BATCH_COLUMN: pa.scalar(batch_id, pa.string()),
        RUN_COLUMN: pa.scalar(run_id, pa.string()),
        INGESTED_AT_COLUMN: pa.scalar(ingested_at, pa.timestamp("us", tz="UTC")),
    }
    for name, value in columns.items():
        batch = batch.append_column(name, pa.repeat(value, batch.num_rows))
    return batch
