"""A large input cut into batches, processed in parallel as mapped tasks, one commit per batch.

silver/transactions is cut into one batch per day: stable boundaries, so a re-run replaces
exactly the partitions it wrote before. Each batch task reads its day (the filter is pushed into
the Delta scan), scores it and replaces that day's partition of silver/scored_transactions.
Tasks run on threads, or on a Dask cluster when LAKE_DASK_ADDRESS names its scheduler. A batch
that fails is retried (unless its data breaks the input contract: retrying cannot help), then
reported while the other batches still land; the run ends Failed if any batch did, after the
progress, per-batch and summary artifacts (success rate, rows/s) are published.

    python flows/etl/batch_processing.py
    LAKE_DASK_ADDRESS=tcp://scheduler:8786 python flows/etl/batch_processing.py --large-amount 500
"""

from __future__ import annotations

import argparse
import time as clock
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl
from prefect import Task, flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows import samples
from flows.catalog import SCORED_TRANSACTIONS, TRANSACTIONS
from flows.core import lake
from flows.core.artifacts import Progress, markdown_table, publish_markdown, publish_table
from flows.core.errors import ContractViolation, LakeError
from flows.core.settings import get_settings
from flows.core.tasks import LAKE_READ, LAKE_WRITE

NIGHT_HOURS = 6


@dataclass(frozen=True)
class BatchResult:
    """One batch's outcome."""

    batch: str
    status: str
    rows: int = 0
    seconds: float = 0.0
    error: str = ""


def batch_problems(batch: pl.DataFrame) -> list[str]:
    """Why a batch cannot be scored (its input breaks the contract); empty when it can."""
    problems = []
    negative = batch.filter(pl.col("amount") < 0).height
    if negative:
        problems.append(f"{negative} rows with a negative amount")
    missing = batch.filter(pl.col("account_id").is_null() | pl.col("amount").is_null()).height
    if missing:
        problems.append(f"{missing} rows without account or amount")
    return problems


def scored_transactions(batch: pl.DataFrame, large_amount: float) -> pl.DataFrame:
    """Rule-based risk flags per transaction: large amount, night time, and a 0-1 score."""
    is_large = pl.col("amount") >= large_amount
    is_night = pl.col("occurred_at").dt.hour() < NIGHT_HOURS
    size = (pl.col("amount") / (10 * large_amount)).clip(0, 1)
    return batch.with_columns(
        pl.col("occurred_at").dt.date().alias("occurred_date"),
        is_large.alias("is_large"),
        is_night.alias("is_night"),
        (0.5 * is_large.cast(pl.Float64) + 0.3 * is_night.cast(pl.Float64) + 0.2 * size)
        .round(4)
        .alias("risk_score"),
    )


def batch_summary(results: list[BatchResult], seconds: float) -> dict[str, Any]:
    """Success rate and throughput over the whole run (wall-clock, so parallelism counts)."""
    done = [r for r in results if r.status == "completed"]
    rows = sum(r.rows for r in done)
    return {
        "batches": len(results),
        "succeeded": len(done),
        "failed": len(results) - len(done),
        "success_rate": round(len(done) / len(results), 4) if results else 1.0,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds) if seconds > 0 else 0,
    }


def day_window(day: date) -> pl.Expr:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return (pl.col("occurred_at") >= start) & (pl.col("occurred_at") < start + timedelta(days=1))


def configured_task_runner() -> TaskRunner[Any]:
    """A Dask cluster when LAKE_DASK_ADDRESS is set, else threads in this process."""
    address = get_settings().dask_address
    if address:
        from prefect_dask.task_runners import DaskTaskRunner

        runner: TaskRunner[Any] = DaskTaskRunner(address=address)
        return runner
    return ThreadPoolTaskRunner()


def retry_unless_bad_data(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry transient failures (storage, network); a batch whose data is bad fails at once."""
    return not isinstance(state.data, ContractViolation)


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def seed_missing_input(rows: int) -> bool:
    """Sample transactions when silver/transactions does not exist yet (the zero-config run)."""
    if lake.exists(TRANSACTIONS):
        return False
    lake.merge(TRANSACTIONS, samples.transactions(rows))
    return True


@task(**LAKE_READ, cache_policy=NO_CACHE)
def list_batches() -> list[date]:
    days = lake.scan(TRANSACTIONS).select(pl.col("occurred_at").dt.date().unique()).collect()
    return sorted(days.to_series().to_list())


@task(
    **LAKE_WRITE,
    retry_condition_fn=retry_unless_bad_data,
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
    task_runner=configured_task_runner(),
)
def batch_processing(
    days: list[date] | None = None, large_amount: float = 1_000.0, sample_rows: int = 100_000
) -> dict[str, Any]:
    """Score `days` (default: every day in silver/transactions), one mapped task per day."""
    logger = get_run_logger()
    if seed_missing_input(sample_rows):
        logger.info("Seeded %d sample transactions", sample_rows)
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
        f"# Batch processing: {summary['succeeded']}/{summary['batches']} batches"
        f" ({summary['success_rate']:.1%})\n\n{markdown_table([summary])}\n\n"
        + ("## Failed batches\n\n" + markdown_table([asdict(r) for r in failed]) if failed else ""),
        description="Success rate and throughput",
    )
    logger.info("Batch processing summary: %s", summary)
    if failed:
        raise LakeError(
            f"{len(failed)} of {len(results)} batches failed (the others landed): "
            + "; ".join(r.error for r in failed)
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=batch_processing.description)
    parser.add_argument("--large-amount", type=float, default=1_000.0, help="a large amount")
    parser.add_argument("--sample-rows", type=int, default=100_000, help="sample rows if none")
    args = parser.parse_args()
    batch_processing(large_amount=args.large_amount, sample_rows=args.sample_rows)


if __name__ == "__main__":
    main()
