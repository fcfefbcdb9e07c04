from datetime import UTC, date, datetime

import polars as pl
import pytest

from flows import samples
from flows.catalog import SCORED_TRANSACTIONS, TRANSACTIONS
from flows.core import lake
from flows.core.errors import LakeError
from flows.etl.batch.transforms import (
    BatchResult,
    batch_problems,
    batch_summary,
    day_window,
    scored_transactions,
    summary_report,
)
from flows.etl.batch_processing import batch_processing


def transactions(**columns):
    base = {"transaction_id": [1], "account_id": [1], "amount": [10.0],
            "occurred_at": [datetime(2024, 1, 1, 12, tzinfo=UTC)]}  # fmt: skip
    return pl.DataFrame(base | columns)


@pytest.mark.parametrize(
    ("columns", "problems"),
    [
        ({}, []),
        ({"amount": [-1.0]}, ["1 rows with a negative amount"]),
        ({"account_id": [None]}, ["1 rows without account or amount"]),
    ],
)
def test_batch_problems(columns, problems):
    assert batch_problems(transactions(**columns)) == problems


@pytest.mark.parametrize(
    ("amount", "hour", "large", "night", "score"),
    [
        (10.0, 12, False, False, 0.0002),
        (1_000.0, 12, True, False, 0.52),
        (50_000.0, 3, True, True, 1.0),
        (0.0, 5, False, True, 0.3),
    ],
)
def test_scored_transactions_flags_and_scores(amount, hour, large, night, score):
    batch = transactions(amount=[amount], occurred_at=[datetime(2024, 1, 1, hour, tzinfo=UTC)])
    row = scored_transactions(batch, large_amount=1_000.0).row(0, named=True)
    assert (row["is_large"], row["is_night"], row["risk_score"]) == (large, night, score)
    assert row["occurred_date"] == date(2024, 1, 1)


def test_batch_summary_reports_success_rate_and_throughput():
    results = [BatchResult("a", "completed", 300), BatchResult("b", "completed", 100),
               BatchResult("c", "failed", error="x"), BatchResult("d", "completed", 0)]  # fmt: skip
    summary = batch_summary(results, seconds=2.0)
    assert summary == {"batches": 4, "succeeded": 3, "failed": 1, "success_rate": 0.75,
                       "rows": 400, "seconds": 2.0, "rows_per_second": 200}  # fmt: skip
    assert batch_summary([], 0.0)["success_rate"] == 1.0


def test_summary_report_lists_failed_batches_only_when_there_are_some():
    summary = batch_summary([BatchResult("a", "completed", 10)], seconds=1.0)
    assert summary_report(summary, []).startswith("# Batch processing: 1/1 batches (100.0%)")
    assert "Failed batches" not in summary_report(summary, [])
    failed = [BatchResult("2024-01-02", "failed", error="ContractViolation: bad")]
    assert "ContractViolation: bad" in summary_report(summary, failed)


def test_day_window_holds_exactly_one_utc_day():
    times = [datetime(2024, 1, 1, 23, 59, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC),
             datetime(2024, 1, 2, 23, 59, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)]  # fmt: skip
    assert pl.DataFrame({"occurred_at": times}).filter(day_window(date(2024, 1, 2))).height == 2


def seed_transactions(rows, days):
    """Sample transactions of the first `days` days (30 batches would only make the test slow)."""
    sample = pl.from_arrow(samples.transactions(rows))
    kept = sample.filter(pl.col("occurred_at").dt.date() < date(2024, 1, 1 + days))
    lake.merge(TRANSACTIONS, kept)
    return set(kept["transaction_id"].to_list())


def scored_ids():
    ids = lake.read(SCORED_TRANSACTIONS, columns=["transaction_id"])["transaction_id"]
    assert ids.is_duplicated().sum() == 0
    return set(ids.to_list())


def test_flow_scores_every_day_in_parallel_and_a_rerun_changes_nothing(any_lake, prefect_api):
    expected = seed_transactions(3_000, days=5)
    summary = batch_processing()
    assert (summary["batches"], summary["succeeded"], summary["rows"]) == (5, 5, len(expected))
    assert summary["success_rate"] == 1.0
    assert scored_ids() == expected
    again = batch_processing()
    assert again["rows"] == len(expected)
    assert scored_ids() == expected


def test_a_failing_batch_is_isolated_reported_and_fixed_by_a_rerun(local_lake, prefect_api):
    expected = seed_transactions(3_000, days=5)
    bad_day = datetime(2024, 1, 5, 12, tzinfo=UTC)
    lake.append(TRANSACTIONS, transactions(transaction_id=[999_999], amount=[-5.0], occurred_at=[bad_day],
                                           merchant_category=["fuel"], latitude=[0.0], longitude=[0.0]))  # fmt: skip
    with pytest.raises(
        LakeError, match=r"1 of 5 batches failed .*batch 2024-01-05: 1 rows with a negative amount"
    ):
        batch_processing()
    scored = lake.read(SCORED_TRANSACTIONS)
    assert scored["occurred_date"].n_unique() == 4
    assert date(2024, 1, 5) not in scored["occurred_date"].to_list()

    lake.delete(TRANSACTIONS, where={"transaction_id": 999_999})
    fixed = batch_processing(days=[date(2024, 1, 5)])
    assert fixed["succeeded"] == 1
    assert scored_ids() == expected
