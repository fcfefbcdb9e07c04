"""Case 1, 2 and 8 work: landing CSV → silver/orders + quarantine, and the two baselines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv

from flows.core import lake
from flows.core.lineage import current_run, fingerprint, stamp
from flows.core.settings import get_settings
from flows.core.tables import ORDERS

READ_BLOCK_BYTES = 8 << 20


@dataclass
class Ingested:
    """Row counts of one or more landing files."""

    read: int = 0
    valid: int = 0
    rejected: int = 0

    def add(self, other: Ingested) -> None:
        self.read += other.read
        self.valid += other.valid
        self.rejected += other.rejected


def ingest_file(path: Path, batch_rows: int) -> Ingested:
    """Stream a CSV in batches: stamp lineage, split on the contract, merge, quarantine rejects."""
    batch_id = fingerprint(path.name, str(path.stat().st_size))
    run_id = current_run().id
    counts = Ingested()
    for batch in _batches(path, batch_rows):
        raw = stamp(
            batch, source=path.name, batch_id=batch_id, run_id=run_id, ingested_at=datetime.now(UTC)
        )
        valid, rejects = ORDERS.split(raw)
        lake.merge(ORDERS, valid)
        if rejects.num_rows:
            lake.append(ORDERS.quarantine, rejects)
        counts.add(Ingested(raw.num_rows, valid.num_rows, rejects.num_rows))
    return counts


def _batches(path: Path, batch_rows: int) -> Iterator[pa.Table]:
    assert ORDERS.schema is not None
    as_text = {name: pa.string() for name in ORDERS.schema.names}
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=READ_BLOCK_BYTES),
        convert_options=pcsv.ConvertOptions(column_types=as_text),
    )
    pending: list[pa.RecordBatch] = []
    for batch in reader:
        pending.append(batch)
        if sum(b.num_rows for b in pending) >= batch_rows:
            yield pa.Table.from_batches(pending)
            pending = []
    if pending:
        yield pa.Table.from_batches(pending)


def _files(params: dict[str, Any]) -> list[Path]:
    return [Path(name) for name in params["files"]]


def core(params: dict[str, Any]) -> dict[str, Any]:
    """The lake's ingest, built from flows.core: streaming, checked, quarantined, merged."""
    batch_rows = int(params.get("batch_rows") or get_settings().batch_rows)
    counts = Ingested()
    started = perf_counter()
    for path in _files(params):
        counts.add(ingest_file(path, batch_rows))
    seconds = perf_counter() - started
    silver = lake.read(ORDERS, columns=["order_id"]).height
    return {
        "seconds": seconds,
        "rows": counts.read,
        "valid": counts.valid,
        "rejected": counts.rejected,
        "silver_rows": silver,
    }


def raw_floor(params: dict[str, Any]) -> dict[str, Any]:
    """The floor: pyarrow's typed CSV read and one Delta write per file; no checks, no lineage."""
    from deltalake import write_deltalake

    target = lake.location(ORDERS)
    rows = 0
    started = perf_counter()
    for path in _files(params):
        table = pcsv.read_csv(path)
        write_deltalake(target, table, mode="append", partition_by=list(ORDERS.partition_by))
        rows += table.num_rows
    return {"seconds": perf_counter() - started, "rows": rows}


def pandas_naive(params: dict[str, Any]) -> dict[str, Any]:
    """What a typical hand-written flow does: read_csv, drop_duplicates, to_parquet per file."""
    import pandas as pd

    out = Path(lake.location(ORDERS))
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    started = perf_counter()
    for path in _files(params):
        frame = pd.read_csv(path)
        rows += len(frame)
        frame.drop_duplicates().to_parquet(out / f"{path.stem}.parquet")
    return {"seconds": perf_counter() - started, "rows": rows}
