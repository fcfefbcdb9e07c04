"""Fraud detection's tasks and flow (flows/ml/fraud_detection.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from sklearn.ensemble import IsolationForest

from flows.catalog import FRAUD_ACCOUNT_STATE, FRAUD_ALERTS, TRANSACTIONS
from flows.core import lake
from flows.core.artifacts import Progress, publish_markdown
from flows.core.inputs import provide_inputs, stop
from flows.core.settings import get_settings
from flows.core.tasks import LAKE_READ, LAKE_WRITE
from flows.ml.fraud.anomaly import (
    ANOMALY_MODEL,
    MIN_FIT_ROWS,
    anomaly_inputs,
    fitted_forest,
    forest_alerts,
    forest_version,
)
from flows.ml.fraud.report import summary_markdown
from flows.ml.fraud.rules import FraudRules, detect_fraud, empty_state, merged_state, watermark
from flows.ml.fraud.sample_data import sample_transactions
from flows.ml.registry import (
    load_model,
    next_version,
    production_row,
    registry_rows,
    registry_updates,
    save_model,
    write_registry,
)


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
    model = fitted_forest(inputs, contamination=contamination, seed=seed)
    registered = forest_version(
        version=next_version(registry_rows(ANOMALY_MODEL)),
        fitted_rows=len(inputs),
        contamination=contamination,
        seed=seed,
        transactions_version=transactions_version,
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
    sample_data: bool | None = None,
    sample_rows: int = 10_000,
    seed: int = 5,
    batch_rows: int | None = None,
    allowed_lateness_minutes: float = 60,
    velocity_window_minutes: float = 10,
    velocity_max: int = 5,
    amount_z: float = 4.5,
    max_speed_kmh: float = 900,
    contamination: float = 0.002,
) -> dict[str, Any] | State[Any]:
    """Process the transactions newer than the state, batch by batch; alerts and state MERGEd.

    Args:
        sample_rows: sample transactions written if silver/transactions does not exist.
        seed: the sample data's and the isolation forest's seed.
        batch_rows: transactions per batch (default LAKE_BATCH_ROWS).
        allowed_lateness_minutes: re-read this much history before the newest processed one.
        velocity_window_minutes: the window of the velocity rule.
        velocity_max: more transactions than this in the window raise an alert.
        amount_z: an amount whose robust z-score for its account exceeds this raises an alert.
        max_speed_kmh: faster travel between two transactions is impossible travel.
        contamination: the share of anomalies the isolation forest expects.
        sample_data: fill a missing input with sample rows; default: the LAKE_SAMPLE_DATA
            setting (on for a local lake, off on S3 and in deployment runs).
    """
    logger = get_run_logger()
    rules = FraudRules(
        velocity_window=timedelta(minutes=velocity_window_minutes),
        velocity_max=velocity_max,
        amount_z=amount_z,
        max_speed_kmh=max_speed_kmh,
    )
    sample = [(TRANSACTIONS, lambda: sample_transactions(sample_rows, seed))]
    reason = provide_inputs(sample, sample_data)
    if reason:
        return stop(reason)
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
            alerts = pl.concat([alerts, forest_alerts(model, result.signals, inputs, now)])
        write_alerts(alerts)  # before the state: a crash in between re-runs the batch
        write_state(result.state)
        state = merged_state(state, result.state)
        for rule, n in alerts.get_column("rule").value_counts().iter_rows():
            counts[rule] = counts.get(rule, 0) + n
        progress.advance()

    publish_markdown(
        "fraud-detection-summary",
        summary_markdown(
            transactions=transactions.height,
            batches=len(batches),
            since=since,
            source=f"{TRANSACTIONS.path} v{version}",
            counts=counts,
            rules=rules,
        ),
        description="Alerts per rule in this run, and the thresholds used",
    )
    return {
        "transactions": transactions.height,
        "batches": len(batches),
        "alerts": counts,
        "transactions_version": version,
    }
