"""Case 8 work: the pipeline's per-file functions wired as a Prefect flow; a mapped flow."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from bench.variants.ingest import ingest_delivery, landed_orders, summary
from flows.etl.s3_pipeline.transforms import Conformed, LandingFile


@task(retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def ingest_landing_file(file: LandingFile, batch_rows: int | None) -> Conformed:
    return ingest_delivery(file, batch_rows)


@flow(name="Bench Ingest")
def ingest_landed_orders(batch_rows: int | None) -> list[Conformed]:
    """One task per delivery, in order (they all merge into one table)."""
    return [ingest_landing_file(file, batch_rows) for file in landed_orders()]


@task(cache_policy=NO_CACHE)
def identity(value: int) -> int:
    return value


@flow(name="Bench Mapped")
def mapped_identity(tasks: int) -> int:
    return sum(identity.map(range(tasks)).result())


def flow_ingest(params: dict[str, Any]) -> dict[str, Any]:
    started = perf_counter()
    results = ingest_landed_orders(params.get("batch_rows"))
    return {"seconds": perf_counter() - started, **summary(results)}


def mapped(params: dict[str, Any]) -> dict[str, Any]:
    tasks = int(params["tasks"])
    started = perf_counter()
    total = mapped_identity(tasks)
    assert total == sum(range(tasks))
    return {"seconds": perf_counter() - started, "rows": tasks}
