"""Per-account fraud rules over transaction batches, vectorised in Polars, with carried-over state.

A batch is scored on its account's timeline: the account's recent transactions from earlier
batches (the persisted state) followed by the batch's own, so a burst or a jump that straddles a
batch boundary is seen exactly as if it had arrived in one batch. Pure functions, no I/O: the
flow persists the state and the alerts; the benchmark calls `detect_fraud` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import numpy as np
import polars as pl

from flows.core.stats import robust_z

FloatArray: TypeAlias = np.ndarray[Any, np.dtype[np.float64]]
IntArray: TypeAlias = np.ndarray[Any, np.dtype[np.int64]]
EARTH_RADIUS_KM = 6_371.0


@dataclass(frozen=True)
class FraudRules:
    """Thresholds of the rules; the defaults suit card transactions."""

    velocity_window: timedelta = timedelta(minutes=10)
    velocity_max: int = 5
    """Alert when an account makes more than this many transactions within the window."""
    amount_z: float = 4.5
    """Alert when log(amount)'s robust z-score against the account's history exceeds this."""
    amount_min_history: int = 10
    history_size: int = 50
    """Transactions per account kept as state (the amount rule's history)."""
    max_speed_kmh: float = 900.0
    """Faster than an airliner between two consecutive transactions is impossible travel."""
    min_travel_km: float = 50.0
    """Shorter jumps are location noise, whatever the implied speed."""


@dataclass(frozen=True)
class FraudResult:
    signals: pl.DataFrame
    """The batch's transactions with every rule's measurements and flags."""
    alerts: pl.DataFrame
    """One row per (transaction, rule) that fired, with the evidence as JSON."""
    state: pl.DataFrame
    """The next state of every account the batch touched."""


TRANSACTION_COLUMNS = (
    "transaction_id",
    "account_id",
    "amount",
    "latitude",
    "longitude",
    "occurred_at",
)
_STATE_LISTS = {
    "transaction_ids": "transaction_id",
    "occurred_at": "occurred_at",
    "amounts": "amount",
    "latitudes": "latitude",
    "longitudes": "longitude",
}


def haversine_km(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    """Great-circle distance in km between two points given in degrees."""
    phi1, phi2 = lat1.radians(), lat2.radians()
    dphi, dlambda = phi2 - phi1, (lon2 - lon1).radians()
    a = (dphi / 2).sin() ** 2 + phi1.cos() * phi2.cos() * (dlambda / 2).sin() ** 2
    return 2 * EARTH_RADIUS_KM * a.sqrt().arcsin()


def empty_state() -> pl.DataFrame:
    """A state with no accounts, in the FRAUD_ACCOUNT_STATE layout."""
    utc = pl.Datetime("us", "UTC")
    return pl.DataFrame(
        schema={
            "account_id": pl.Int64,
            "transaction_ids": pl.List(pl.Int64),
            "occurred_at": pl.List(utc),
            "amounts": pl.List(pl.Float64),
            "latitudes": pl.List(pl.Float64),
            "longitudes": pl.List(pl.Float64),
            "last_seen_at": utc,
            "updated_at": utc,
        }
    )


def account_timeline(batch: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """Each touched account's remembered transactions, then the batch's, in time order.

    Remembered transactions that reappear in the batch (a re-run) count once, as batch rows.
    """
    rows = batch.select(TRANSACTION_COLUMNS).with_columns(pl.lit(False).alias("_remembered"))
    remembered = (
        state.filter(pl.col("account_id").is_in(rows.get_column("account_id").unique().implode()))
        .select("account_id", *(pl.col(k).alias(v) for k, v in _STATE_LISTS.items()))
        .explode(list(_STATE_LISTS.values()))
        .drop_nulls("transaction_id")
        .filter(~pl.col("transaction_id").is_in(rows.get_column("transaction_id").implode()))
        .select(TRANSACTION_COLUMNS)
        .with_columns(pl.lit(True).alias("_remembered"))
    )
    return (
        pl.concat([remembered, rows.cast(remembered.schema)])
        .sort("account_id", "occurred_at", "transaction_id")
        .with_columns(pl.int_range(pl.len()).over("account_id").alias("_seq"))
    )


def _row_medians(
    sorted_rows: FloatArray,
    counts: IntArray,
) -> FloatArray:
    rows = np.arange(len(counts))
    low, high = np.clip((counts - 1) // 2, 0, None), np.clip(counts // 2, 0, None)
    middle = (sorted_rows[rows, low] + sorted_rows[rows, high]) / 2
    return np.where(counts > 0, middle, np.nan)


def history_median_mad(
    values: FloatArray,
    seq: IntArray,
    window: int,
    chunk_rows: int = 100_000,
) -> tuple[FloatArray, FloatArray]:
    """Median and MAD of the up to `window` values before each row of its group (NaN if none).

    `values` are grouped and time-ordered; `seq` numbers each row within its group from 0.
    Exact, vectorised over `chunk_rows` rows at a time (memory: chunk_rows x window floats).
    """
    counts = np.minimum(seq, window).astype(np.int64)
    offsets = np.arange(1, window + 1)
    median = np.full(len(values), np.nan)
    mad = np.full(len(values), np.nan)
    for start in range(0, len(values), chunk_rows):
        stop = min(start + chunk_rows, len(values))
        before = np.arange(start, stop)[:, None] - offsets[None, :]
        valid = offsets[None, :] <= counts[start:stop, None]
        window_values = np.sort(np.where(valid, values[np.clip(before, 0, None)], np.nan), axis=1)
        median[start:stop] = _row_medians(window_values, counts[start:stop])
        deviations = np.sort(np.abs(window_values - median[start:stop, None]), axis=1)
        mad[start:stop] = _row_medians(deviations, counts[start:stop])
    return median, mad


def timeline_signals(timeline: pl.DataFrame, rules: FraudRules) -> pl.DataFrame:
    """Every rule's measurement and flag for each transaction of a time-ordered timeline."""
    log_amount = pl.col("amount").log1p()
    median, mad = history_median_mad(
        timeline.select(log_amount).to_series().to_numpy(),
        timeline.get_column("_seq").to_numpy(),
        rules.history_size,
    )
    history: list[pl.Expr | pl.Series] = [
        pl.col("_seq").clip(upper_bound=rules.history_size).alias("amount_history"),
        pl.Series("_median", median),
        pl.Series("_mad", mad),
    ]
    previous = [
        pl.col(c).shift(1).over("account_id").alias(f"previous_{c}")
        for c in ("occurred_at", "latitude", "longitude", "transaction_id")
    ]
    hours = (pl.col("occurred_at") - pl.col("previous_occurred_at")).dt.total_microseconds() / 3.6e9
    signals = (
        timeline.with_columns(*history)
        .with_columns(
            pl.col("transaction_id")
            .is_not_null()
            .cast(pl.Int64)
            .rolling_sum_by("occurred_at", window_size=rules.velocity_window, closed="right")
            .over("account_id")
            .alias("velocity_count"),
            pl.col("_median").exp().sub(1).alias("amount_median"),
            robust_z(log_amount, pl.col("_median"), pl.col("_mad")).alias("amount_z"),
            *previous,
        )
        .with_columns(
            haversine_km(
                pl.col("previous_latitude"),
                pl.col("previous_longitude"),
                pl.col("latitude"),
                pl.col("longitude"),
            ).alias("distance_km"),
            hours.alias("hours_since_previous"),
        )
        .with_columns((pl.col("distance_km") / pl.col("hours_since_previous")).alias("speed_kmh"))
    )
    return signals.with_columns(
        (pl.col("velocity_count") > rules.velocity_max).alias("velocity"),
        (
            (pl.col("amount_history") >= rules.amount_min_history)
            & (pl.col("amount_z") > rules.amount_z)
        )
        .fill_null(False)
        .alias("amount_anomaly"),
        (
            (pl.col("distance_km") >= rules.min_travel_km)
            & (pl.col("speed_kmh") > rules.max_speed_kmh)
        )
        .fill_null(False)
        .alias("impossible_travel"),
    ).drop("_median", "_mad")


_EVIDENCE = {
    "velocity": ("velocity_count",),
    "amount_anomaly": ("amount", "amount_median", "amount_z", "amount_history"),
    "impossible_travel": (
        "previous_transaction_id",
        "distance_km",
        "hours_since_previous",
        "speed_kmh",
    ),
}


def rule_alerts(signals: pl.DataFrame, detected_at: datetime) -> pl.DataFrame:
    """FRAUD_ALERTS rows: one per transaction and rule that fired, evidence as JSON."""
    frames = [
        signals.filter(pl.col(rule)).select(
            "transaction_id",
            pl.lit(rule).alias("rule"),
            "account_id",
            "occurred_at",
            "amount",
            pl.struct(
                *(
                    pl.col(c).round(3) if c != "previous_transaction_id" else pl.col(c)
                    for c in evidence
                )
            )
            .struct.json_encode()
            .alias("evidence"),
        )
        for rule, evidence in _EVIDENCE.items()
    ]
    return pl.concat(frames).with_columns(
        pl.lit(detected_at, pl.Datetime("us", "UTC")).alias("detected_at")
    )


def next_state(timeline: pl.DataFrame, rules: FraudRules, updated_at: datetime) -> pl.DataFrame:
    """The last `history_size` transactions of every account on the timeline, as list columns."""
    return (
        timeline.group_by("account_id")
        .agg(
            *(pl.col(v).tail(rules.history_size).alias(k) for k, v in _STATE_LISTS.items()),
            pl.col("occurred_at").max().alias("last_seen_at"),
        )
        .with_columns(pl.lit(updated_at, pl.Datetime("us", "UTC")).alias("updated_at"))
        .sort("account_id")
        .select(empty_state().columns)
    )


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


def detect_fraud(
    batch: pl.DataFrame, state: pl.DataFrame, rules: FraudRules, detected_at: datetime
) -> FraudResult:
    """Score a batch against the accounts' state: signals, alerts and the accounts' next state."""
    timeline = account_timeline(batch, state)
    signals = timeline_signals(timeline, rules)
    in_batch = signals.filter(~pl.col("_remembered")).drop("_remembered", "_seq")
    return FraudResult(
        signals=in_batch,
        alerts=rule_alerts(in_batch, detected_at),
        state=next_state(timeline, rules, detected_at),
    )
