"""Case 1, 2 and 8 work: landing CSV → silver/orders + quarantine, and the two baselines.

The lake's path is the S3 data pipeline's own per-file functions: `ingest_file` streams a delivery
into bronze (one app-transaction commit) while splitting each batch on the contract into a local
spool, and `conform_file` writes the spooled rows to silver (new keys appended in one commit, the
rest MERGEd) and quarantine. Each variant reads the same files from `landing/orders/`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import pyarrow.csv as pcsv

from bench.worker import peak_rss_kib
from flows.catalog import ORDERS
from flows.core import lake, storage
from flows.core.lineage import current_run
from flows.core.settings import get_settings
from flows.etl.s3_pipeline.layers import conform_file, ingest_file
from flows.etl.s3_pipeline.transforms import Conformed, LandingFile, landing_files

LANDING = "landing"


def landed_orders() -> list[LandingFile]:
    """The orders deliveries under the scratch lake's landing folder, in path order."""
    files, _ = landing_files(storage.describe_objects(LANDING), LANDING, {"orders": ORDERS})
    return sorted(files, key=lambda file: file.path)


@dataclass
class _Stages:
    """Where a run's time went (parse, contract split and bronze commit vs silver and quarantine
    commits) and the peak after bronze."""

    bronze_seconds: float = 0.0
    silver_seconds: float = 0.0
    bronze_peak_kib: int = 0


_stages = _Stages()


def ingest_delivery(file: LandingFile, batch_rows: int | None) -> Conformed:
    """One delivery through bronze into silver and quarantine, as the pipeline does it."""
    started = perf_counter()
    parsed = ingest_file(file, run_id=current_run().id, batch_rows=batch_rows)
    if parsed.status != "bronze":
        raise RuntimeError(f"{file.path} was not ingested: {parsed.status} {parsed.error}")
    parsed_at = perf_counter()
    _stages.bronze_seconds += parsed_at - started
    _stages.bronze_peak_kib = max(_stages.bronze_peak_kib, peak_rss_kib())
    conformed = conform_file(file, batch_rows=batch_rows)
    _stages.silver_seconds += perf_counter() - parsed_at
    return conformed


def summary(results: list[Conformed]) -> dict[str, Any]:
    """Row counts of a run and where its time and memory went (then reset for the next run)."""
    global _stages
    stages, _stages = _stages, _Stages()
    return {
        "rows": sum(c.bronze_rows for c in results),
        "valid": sum(c.valid for c in results),
        "rejected": sum(c.quarantined for c in results),
        "silver_rows": lake.read(ORDERS, columns=["order_id"]).height,
        "bronze_seconds": stages.bronze_seconds,
        "silver_seconds": stages.silver_seconds,
        "peak_after_bronze_mb": round(stages.bronze_peak_kib / 1024),
        "silver_commits": silver_commits(),
    }


def silver_commits() -> str:
    """silver/orders' commits by kind: the empty table created, appends of new keys, MERGEs."""
    kinds = Counter(
        "create" if commit["version"] == 0 else _COMMIT_KINDS.get(commit["operation"], "other")
        for commit in lake.history(ORDERS)
    )
    return ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))


_COMMIT_KINDS = {"WRITE": "append", "MERGE": "merge"}


def pipeline(params: dict[str, Any]) -> dict[str, Any]:
    """The S3 data pipeline's per-file functions, called in a plain loop."""
    started = perf_counter()
    results = [ingest_delivery(file, params.get("batch_rows")) for file in landed_orders()]
    return {"seconds": perf_counter() - started, **summary(results)}


def _csv_files() -> list[Path]:
    return sorted((Path(get_settings().root) / LANDING / "orders").glob("*.csv"))


def raw_floor(params: dict[str, Any]) -> dict[str, Any]:
    """The floor: pyarrow's typed CSV read and one Delta write per file; no checks, no lineage."""
    from deltalake import write_deltalake

    target = lake.location(ORDERS)
    rows = 0
    started = perf_counter()
    for path in _csv_files():
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
    for path in _csv_files():
        frame = pd.read_csv(path)
        rows += len(frame)
        frame.drop_duplicates().to_parquet(out / f"{path.stem}.parquet")
    return {"seconds": perf_counter() - started, "rows": rows}


def duckdb_naive(params: dict[str, Any]) -> dict[str, Any]:
    """The pandas script's work in DuckDB: read_csv, DISTINCT, COPY to Parquet per file; no
    contract, lineage or Delta log (its delta extension downloads at run time)."""
    import duckdb

    out = Path(lake.location(ORDERS))
    out.mkdir(parents=True, exist_ok=True)
    database = duckdb.connect()
    rows = 0
    started = perf_counter()
    for path in _csv_files():
        source = f"read_csv({duckdb_literal(str(path))})"
        counted = database.execute(f"SELECT count(*) FROM {source}").fetchone()
        rows += int(counted[0]) if counted else 0
        target = duckdb_literal(str(out / f"{path.stem}.parquet"))
        database.execute(f"COPY (SELECT DISTINCT * FROM {source}) TO {target} (FORMAT parquet)")
    return {"seconds": perf_counter() - started, "rows": rows}


def duckdb_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
