"""Incremental ingestion shared by database_ingest and api_ingest: land a unit, then move on.

A unit (a keyset chunk of a table, a page of an API) replaces its own rows in its raw bronze
table (by batch id), its valid rows merge into the silver table and its rejects replace its rows
in quarantine; only then does the source's position in `_ops/ingest_state` move. A crash at any
point re-does that unit on the next run, which replaces or re-merges it: nothing is duplicated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.catalog import INGEST_STATE
from flows.core import lake
from flows.core.contracts import Table
from flows.core.lineage import BATCH_COLUMN, current_run, stamp
from flows.core.tasks import LAKE_READ, LAKE_WRITE, retry_if_transient


@dataclass(frozen=True)
class Landed:
    """What landing one unit did."""

    batch_id: str
    rows: int
    valid: int
    quarantined: int
    inserted: int
    updated: int


def landed_totals(landed: Iterable[Landed]) -> dict[str, int]:
    """Rows landed by a run's units: in total, valid, quarantined, inserted and updated."""
    units = list(landed)
    fields = ("rows", "valid", "quarantined", "inserted", "updated")
    return {name: sum(getattr(unit, name) for unit in units) for name in fields}


@dataclass(frozen=True)
class Position:
    """Where a source stands: the last unit that fully landed, and rows landed so far."""

    position: str
    rows: int


def stamped(raw: pa.Table, *, source: str, batch_id: str) -> pa.Table:
    """The unit with the lineage columns of this run."""
    return stamp(
        raw,
        source=source,
        batch_id=batch_id,
        run_id=current_run().id,
        ingested_at=datetime.now(UTC),
    )


@task(**LAKE_WRITE, retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE)
def land(target: Table, bronze: Table, raw: pa.Table, batch_id: str) -> Landed:
    """Bronze, silver and quarantine for one stamped unit; each write replaces or merges it."""
    lake.replace_where(bronze, raw, where={BATCH_COLUMN: batch_id})
    valid, rejects = target.split(raw)
    silver = lake.merge(target, valid)
    lake.replace_where(target.quarantine, rejects, where={BATCH_COLUMN: batch_id})
    return Landed(
        batch_id,
        raw.num_rows,
        valid.num_rows,
        rejects.num_rows,
        silver.inserted,
        silver.updated,
    )


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_position(source: str) -> Position | None:
    """The source's last committed position; None before its first unit landed."""
    if not lake.exists(INGEST_STATE):
        return None
    found = lake.read(INGEST_STATE, columns=["position", "rows"], where=pl.col("source") == source)
    if found.is_empty():
        return None
    return Position(str(found["position"][0]), int(found["rows"][0] or 0))


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def save_position(source: str, position: Position) -> lake.WriteResult:
    """Move the source's position; called only after the unit's lake commits."""
    row = {
        "source": source,
        "position": position.position,
        "rows": position.rows,
        "run_id": current_run().id,
        "updated_at": datetime.now(UTC),
    }
    return lake.merge(INGEST_STATE, pa.Table.from_pylist([row], INGEST_STATE.schema))
