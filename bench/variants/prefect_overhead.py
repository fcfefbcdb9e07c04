"""Case 8 work: the ingest of `bench.variants.ingest` wired as a Prefect flow; a mapped flow."""

from __future__ import annotations

from pathlib import Path
from time import perf_counter
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from bench.variants.ingest import ingest_file
from flows.core.settings import get_settings


@task(retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def ingest_landing_file(path: str, batch_rows: int) -> dict[str, int]:
    counts = ingest_file(Path(path), batch_rows)
    return {"read": counts.read, "valid": counts.valid, "rejected": counts.rejected}


@flow(name="Bench Ingest")
def ingest_files(files: list[str], batch_rows: int) -> int:
    """One task per landing file, in order (they all merge into one table)."""
    return sum(ingest_landing_file(path, batch_rows)["read"] for path in files)


@task(cache_policy=NO_CACHE)
def identity(value: int) -> int:
    return value


@flow(name="Bench Mapped")
def mapped_identity(tasks: int) -> int:
    return sum(identity.map(range(tasks)).result())


def flow_ingest(params: dict[str, Any]) -> dict[str, Any]:
    batch_rows = int(params.get("batch_rows") or get_settings().batch_rows)
    started = perf_counter()
    rows = ingest_files(list(params["files"]), batch_rows)
    return {"seconds": perf_counter() - started, "rows": rows}


def mapped(params: dict[str, Any]) -> dict[str, Any]:
    tasks = int(params["tasks"])
    started = perf_counter()
    total = mapped_identity(tasks)
    assert total == sum(range(tasks))
    return {"seconds": perf_counter() - started, "rows": tasks}
