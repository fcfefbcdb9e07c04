"""Batch processing's tasks and flow; the command is `flows/etl/batch_processing.py`."""

from __future__ import annotations

import time as clock
from dataclasses import asdict
from datetime import date
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture, as_completed

from flows import samples
from flows.catalog import SCORED_TRANSACTIONS, TRANSACTIONS
from flows.core import lake
from flows.core.artifacts import Progress, publish_markdown, publish_table
from flows.core.errors import ContractViolation, LakeError
from flows.core.inputs import provide_inputs, stop
from flows.core.runners import data_parallel_runner
from flows.core.tasks import LAKE_READ, LAKE_WRITE, retry_if_transient
from flows.etl.batch.transforms import (
    BatchResult,
    batch_problems,
    batch_summary,
    day_window,
    scored_transactions,
    summary_report,
)


@task(**LAKE_READ, cache_policy=NO_CACHE)
def list_batches() -> list[date]:
    days = lake.scan(TRANSACTIONS).select(pl.col("occurred_at").dt.date().unique()).collect()
    return sorted(days.to_series().to_list())


@task(
    **LAKE_WRITE,
    retry_condition_fn=retry_if_transient,
    cache_policy=NO_CACHE,
)
def process_batch(day: date, large_amount: float) -> BatchResult:
    """Score one day and replace its partition of silver/scored_transactions."""
    started = clock.perf_counter()
    batch = lake.read(TRANSACTIONS, where=day_window(day))
    problems = batch_problems(batch)
    if problems:
        raise ContractViolation(f"batch {day}: {'; '.join(problems)}")
    written = lake.overwrite_partitions(
        SCORED_TRANSACTIONS, scored_transactions(batch, large_amount)
    )
    return BatchResult(str(day), "completed", written.rows, clock.perf_counter() - started)


def _outcome(future: PrefectFuture[BatchResult], day: date) -> BatchResult:
    try:
        return future.result()
    except Exception as error:  # isolation: whatever broke this batch must not stop the others
        return BatchResult(str(day), "failed", error=f"{type(error).__name__}: {error}")


@flow(
    name="Batch Processing",
    description="Transactions cut into day batches, scored in parallel as mapped tasks (threads"
    " or Dask), one partition commit per batch; failed batches isolated and reported.",
    task_runner=data_parallel_runner(),
)
def batch_processing(
    days: list[date] | None = None,
    large_amount: float = 1_000.0,
    sample_data: bool | None = None,
    sample_rows: int = 100_000,
) -> dict[str, Any] | State[Any]:
    """Score `days` (default: every day in silver/transactions), one mapped task per day.

    Args:
        days: only these days (YYYY-MM-DD); default: every day in silver/transactions.
        large_amount: a transaction of at least this amount is flagged as large.
        sample_data: fill a missing silver/transactions with sample rows; default: the
            LAKE_SAMPLE_DATA setting (on for a local lake, off on S3 and in deployment runs).
        sample_rows: sample transactions written if silver/transactions does not exist.
    """
    logger = get_run_logger()
    reason = provide_inputs(
        [(TRANSACTIONS, lambda: samples.transactions(sample_rows))], sample_data
    )
    if reason:
        return stop(reason)
    batches = days if days is not None else list_batches()
    progress = Progress("batch-processing-progress", len(batches), "Batches finished")
    started = clock.perf_counter()
    futures = process_batch.map(batches, large_amount=unmapped(large_amount))
    day_of = {future.task_run_id: day for future, day in zip(futures, batches, strict=True)}
    results = []
    for future in as_completed(list(futures)):
        results.append(_outcome(future, day_of[future.task_run_id]))
        progress.advance()
    summary = batch_summary(results, clock.perf_counter() - started)
    results.sort(key=lambda r: r.batch)
    failed = [r for r in results if r.status == "failed"]

    publish_table("batch-processing-batches", [asdict(r) for r in results],
                  description="Each batch: status, rows, seconds, error")  # fmt: skip
    publish_markdown(
        "batch-processing-summary",
        summary_report(summary, failed),
        description="Success rate and throughput",
    )
    logger.info("Batch processing summary: %s", summary)
    if failed:
        raise LakeError(
            f"{len(failed)} of {len(results)} batches failed (the others landed): "
            + "; ".join(r.error for r in failed)
        )
    return summary
