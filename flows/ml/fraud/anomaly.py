"""The isolation forest beside the rules: its inputs, its registry entry and the alerts it raises.

Pure functions, no I/O: the flow loads, saves and registers the model.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, TypeAlias

import numpy as np
import polars as pl
from sklearn.ensemble import IsolationForest

from flows.catalog import TRANSACTIONS
from flows.ml.fraud.rules import FloatArray
from flows.ml.registry import ModelVersion

BoolArray: TypeAlias = np.ndarray[Any, np.dtype[np.bool_]]
ANOMALY_MODEL = "fraud.isolation_forest"
MIN_FIT_ROWS = 200
"""The isolation forest is fitted on the first batch with at least this many transactions."""
TREES = 100


def fitted_forest(inputs: FloatArray, *, contamination: float, seed: int) -> IsolationForest:
    """An isolation forest fitted on `inputs` (rows of anomaly_inputs)."""
    model = IsolationForest(n_estimators=TREES, contamination=contamination, random_state=seed)
    model.fit(inputs)
    return model


def forest_version(
    *, version: int, fitted_rows: int, contamination: float, seed: int, transactions_version: int
) -> ModelVersion:
    """The registry entry of a fitted forest: unsupervised, so the first fitted version serves."""
    return ModelVersion(
        model_name=ANOMALY_MODEL,
        version=version,
        feature_table=TRANSACTIONS.path,
        target=None,
        time_column="occurred_at",
        key_columns=TRANSACTIONS.key,
        features=["log_amount", "amount_z", "velocity", "log_speed", "hour"],
        params={"n_estimators": TREES, "contamination": contamination},
        metrics={"fitted_rows": fitted_rows},
        input_versions={TRANSACTIONS.path: transactions_version},
        seed=seed,
        note="unsupervised: the first fitted version serves",
    )


def anomaly_inputs(signals: pl.DataFrame) -> FloatArray:
    """The per-transaction numbers the isolation forest sees (missing history = typical)."""
    hour = pl.col("occurred_at").dt.hour().cast(pl.Float64) * (2 * math.pi / 24)
    return signals.select(
        pl.col("amount").log1p(),
        pl.col("amount_z").fill_null(0.0).fill_nan(0.0).clip(-50, 50),
        pl.col("velocity_count").cast(pl.Float64),
        pl.col("speed_kmh").fill_null(0.0).fill_nan(0.0).clip(0, 1e6).log1p(),
        hour.sin().alias("hour_sin"),
        hour.cos().alias("hour_cos"),
    ).to_numpy()


def anomaly_alerts(
    signals: pl.DataFrame,
    scores: FloatArray,
    outliers: BoolArray,
    detected_at: datetime,
) -> pl.DataFrame:
    """FRAUD_ALERTS rows for the transactions the isolation forest calls outliers."""
    return (
        signals.with_columns(pl.Series("anomaly_score", scores), pl.Series("_outlier", outliers))
        .filter(pl.col("_outlier"))
        .select(
            "transaction_id",
            pl.lit("isolation_forest").alias("rule"),
            "account_id",
            "occurred_at",
            "amount",
            pl.struct(pl.col("anomaly_score").round(4)).struct.json_encode().alias("evidence"),
            pl.lit(detected_at, pl.Datetime("us", "UTC")).alias("detected_at"),
        )
    )


def forest_alerts(
    model: IsolationForest, signals: pl.DataFrame, inputs: FloatArray, detected_at: datetime
) -> pl.DataFrame:
    """FRAUD_ALERTS rows for the transactions `model` calls outliers, scored by it."""
    scores = -model.score_samples(inputs)
    return anomaly_alerts(signals, scores, model.predict(inputs) == -1, detected_at)
