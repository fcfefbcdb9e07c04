"""Pure parts of batch processing: a day's window, its contract problems, its risk scores, and
the run's summary and report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl

from flows.core.artifacts import markdown_table

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


def summary_report(summary: dict[str, Any], failed: list[BatchResult]) -> str:
    """Markdown: success rate and throughput, then the failed batches if any."""
    return (
        f"# Batch processing: {summary['succeeded']}/{summary['batches']} batches"
        f" ({summary['success_rate']:.1%})\n\n{markdown_table([summary])}\n\n"
        + ("## Failed batches\n\n" + markdown_table([asdict(r) for r in failed]) if failed else "")
    )
