"""Per-account fraud rules over new silver transactions; alerts to gold/fraud_alerts.

Rules: velocity (too many transactions in a sliding window), amount anomaly (robust z-score of
the amount against the account's own recent history, median/MAD), impossible travel (implied
speed between consecutive transactions faster than an airliner), plus an IsolationForest outlier
score. Each account's recent transactions persist in _ops/fraud_account_state, so a pattern split
across batches or runs is still caught. Alerts are MERGEd on (transaction_id, rule): re-running a
batch never duplicates them. Transactions since the state's newest one are processed, oldest
first, in batches of LAKE_BATCH_ROWS; the hour before it is read again for late arrivals.
A missing silver/transactions is seeded with sample data that carries one injected case of each
rule.

    python flows/ml/fraud_detection.py
    LAKE_URI=s3://bucket/lake python flows/ml/fraud_detection.py
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sklearn.ensemble import IsolationForest

from flows import samples
from flows.catalog import FRAUD_ACCOUNT_STATE, FRAUD_ALERTS, TRANSACTIONS
from flows.core import lake
from flows.core.artifacts import Progress, markdown_table, publish_markdown
from flows.core.settings import get_settings
from flows.core.tasks import LAKE_READ, LAKE_WRITE
from flows.ml._fraud import (
    FraudRules,
    anomaly_alerts,
    anomaly_inputs,
    detect_fraud,
    empty_state,
)
from flows.ml._registry import (
    ModelVersion,
    load_model,
    next_version,
    production_row,
    registry_rows,
    registry_updates,
    save_model,
    write_registry,
)

ANOMALY_MODEL = "fraud.isolation_forest"
MIN_FIT_ROWS = 200
"""The isolation forest is fitted on the first batch with at least this many transactions."""


def injected_fraud(first_id: int, at: datetime) -> pa.Table:
    """One case of each rule on accounts 1-3 around `at` (ids from `first_id`, in this order):

    a burst of 8 (the last 3 break the velocity rule), 12 usual amounts then one 1000x larger,
    Paris then New York 30 minutes later.
    """
    burst = [(1, 25.0, 52.52, 13.40, at + timedelta(seconds=30 * i)) for i in range(8)]
    usual = [(2, 20.0 + i, 40.42, -3.70, at - timedelta(days=12 - i)) for i in range(12)]
    spike = [*usual, (2, 20_000.0, 40.42, -3.70, at + timedelta(hours=2))]
    travel = [
        (3, 60.0, 48.86, 2.35, at + timedelta(hours=3)),  # Paris
        (3, 75.0, 40.71, -74.01, at + timedelta(hours=3, minutes=30)),  # New York, 30 min on
    ]
    rows = burst + spike + travel
    return pa.table(
        {
            "transaction_id": pa.array(range(first_id, first_id + len(rows)), pa.int64()),
            "account_id": pa.array([r[0] for r in rows], pa.int64()),
            "amount": [r[1] for r in rows],
            "merchant_category": ["online"] * len(rows),
            "latitude": [r[2] for r in rows],
            "longitude": [r[3] for r in rows],
            "occurred_at": pa.array([r[4] for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )


def sample_transactions(rows: int, seed: int) -> pa.Table:
    """Sample transactions with the injected cases 20 days in (deterministic)."""
    base = samples.transactions(rows, seed=seed)
    return pa.concat_tables([base, injected_fraud(rows + 1, samples.EPOCH + timedelta(days=20))])


def merged_state(state: pl.DataFrame, updates: pl.DataFrame) -> pl.DataFrame:
    """`state` with the updated accounts replaced."""
    kept = state.filter(~pl.col("account_id").is_in(updates.get_column("account_id").implode()))
    return pl.concat([kept, updates])


def watermark(state: pl.DataFrame, lateness: timedelta) -> datetime | None:
    """Where the next run starts: `lateness` before the newest transaction any account has seen.

    Transactions that arrive up to `lateness` late are still scored; those already scored are
    scored again with the same result (their alerts MERGE onto themselves).
    """
    newest = state.get_column("last_seen_at").max()
    return newest - lateness if isinstance(newest, datetime) else None


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def seed_transactions(rows: int, seed: int) -> bool:
    if lake.exists(TRANSACTIONS):
        return False
    lake.merge(TRANSACTIONS, sample_transactions(rows, seed))
    return True


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_state() -> pl.DataFrame:
    if not lake.exists(FRAUD_ACCOUNT_STATE):
        return empty_state()
    return lake.read(FRAUD_ACCOUNT_STATE).cast(empty_state().schema)


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_new_transactions(since: datetime | None) -> tuple[pl.DataFrame, int]:
    """Transactions at or after `since`, oldest first."""
    version = lake.version(TRANSACTIONS)
    where = None if since is None else pl.col("occurred_at") >= since
    frame = lake.read(TRANSACTIONS, where=where, version=version)
    return frame.sort("occurred_at", "transaction_id"), version


@task(**LAKE_READ, cache_policy=NO_CACHE)
def load_anomaly_model() -> IsolationForest | None:
    row = production_row(registry_rows(ANOMALY_MODEL))
    return None if row is None else load_model(row["artifact_uri"], IsolationForest)


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def fit_anomaly_model(
    inputs: np.ndarray[Any, np.dtype[np.float64]],
    contamination: float,
    seed: int,
    transactions_version: int,
) -> IsolationForest:
    """Fit, save and register (as production) the isolation forest; it is never refitted."""
    model = IsolationForest(n_estimators=100, contamination=contamination, random_state=seed)
    model.fit(inputs)
    registered = ModelVersion(
        model_name=ANOMALY_MODEL,
        version=next_version(registry_rows(ANOMALY_MODEL)),
        feature_table=TRANSACTIONS.path,
        target=None,
        time_column="occurred_at",
        features=["log_amount", "amount_z", "velocity", "log_speed", "hour"],
        params={"n_estimators": 100, "contamination": contamination},
        metrics={"fitted_rows": len(inputs)},
        input_versions={TRANSACTIONS.path: transactions_version},
        seed=seed,
        note="unsupervised: the first fitted version serves",
    )
    save_model(model, registered.prefix)
    now = datetime.now(UTC)
    write_registry(registry_updates(registered.row(now), None, promote=True, now=now))
    return model


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def write_alerts(alerts: pl.DataFrame) -> lake.WriteResult:
    return lake.merge(FRAUD_ALERTS, alerts)


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def write_state(state: pl.DataFrame) -> lake.WriteResult:
    return lake.merge(FRAUD_ACCOUNT_STATE, state)


@flow(
    name="Fraud Detection",
    description="Stateful per-account fraud rules and an isolation forest over new transactions.",
)
def fraud_detection(
    sample_rows: int = 10_000,
    seed: int = 5,
    batch_rows: int | None = None,
    allowed_lateness_minutes: float = 60,
    velocity_window_minutes: float = 10,
    velocity_max: int = 5,
    amount_z: float = 4.5,
    max_speed_kmh: float = 900,
    contamination: float = 0.002,
) -> dict[str, Any]:
    """Process the transactions newer than the state, batch by batch; alerts and state MERGEd."""
    logger = get_run_logger()
    rules = FraudRules(
        velocity_window=timedelta(minutes=velocity_window_minutes),
        velocity_max=velocity_max,
        amount_z=amount_z,
        max_speed_kmh=max_speed_kmh,
    )
    if seed_transactions(sample_rows, seed):
        logger.info("Seeded %s with sample data and injected fraud cases", TRANSACTIONS.path)
    state = read_state()
    since = watermark(state, timedelta(minutes=allowed_lateness_minutes))
    transactions, version = read_new_transactions(since)
    size = batch_rows or get_settings().batch_rows
    batches = [transactions.slice(i, size) for i in range(0, transactions.height, size)]
    logger.info(
        "%d transactions since %s in %d batch(es)", transactions.height, since, len(batches)
    )
    progress = Progress("fraud-detection-batches", len(batches), "Transaction batches scored")
    model = load_anomaly_model()
    counts: dict[str, int] = {}
    for batch in batches:
        now = datetime.now(UTC)
        result = detect_fraud(batch, state, rules, now)
        alerts = result.alerts
        inputs = anomaly_inputs(result.signals)
        if model is None and batch.height >= MIN_FIT_ROWS:
            model = fit_anomaly_model(inputs, contamination, seed, version)
        if model is not None:
            scores = -model.score_samples(inputs)
            outliers = model.predict(inputs) == -1
            alerts = pl.concat([alerts, anomaly_alerts(result.signals, scores, outliers, now)])
        write_alerts(alerts)  # before the state: a crash in between re-runs the batch
        write_state(result.state)
        state = merged_state(state, result.state)
        for rule, n in alerts.get_column("rule").value_counts().iter_rows():
            counts[rule] = counts.get(rule, 0) + n
        progress.advance()

    by_rule = [{"rule": rule, "alerts": n} for rule, n in sorted(counts.items())]
    publish_markdown(
        "fraud-detection-summary",
        f"# Fraud detection: {transactions.height} transactions in {len(batches)} batch(es)\n\n"
        f"Since {since or 'the beginning'}, {TRANSACTIONS.path} v{version}.\n\n"
        + markdown_table(by_rule)
        + "\n\n## Rules\n\n"
        + markdown_table([{"rule": k, "value": str(v)} for k, v in asdict(rules).items()]),
        description="Alerts per rule in this run, and the thresholds used",
    )
    return {
        "transactions": transactions.height,
        "batches": len(batches),
        "alerts": counts,
        "transactions_version": version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=fraud_detection.description)
    parser.add_argument("--sample-rows", type=int, default=10_000, help="sample rows to seed")
    parser.add_argument("--seed", type=int, default=5, help="sample and model seed")
    parser.add_argument("--batch-rows", type=int, help="default: LAKE_BATCH_ROWS")
    parser.add_argument(
        "--allowed-lateness-minutes", type=float, default=60, help="re-read this much history"
    )
    parser.add_argument("--velocity-max", type=int, default=5)
    parser.add_argument("--amount-z", type=float, default=4.5)
    args = parser.parse_args()
    fraud_detection(
        sample_rows=args.sample_rows,
        seed=args.seed,
        batch_rows=args.batch_rows,
        allowed_lateness_minutes=args.allowed_lateness_minutes,
        velocity_max=args.velocity_max,
        amount_z=args.amount_z,
    )


if __name__ == "__main__":
    main()
