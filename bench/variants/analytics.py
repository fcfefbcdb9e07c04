"""Cases 4, 5 and 6 work: the flows' pure transforms on generated frames, and pandas baselines.

Inputs are generated before the clock starts; pandas variants get pandas frames, so neither side
pays for a conversion it would not make in its own flow.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from flows import samples
from flows.etl.stream_enrichment import (
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    PRODUCT_COLUMNS,
    enriched_events,
)
from flows.ml.fraud.rules import EARTH_RADIUS_KM, FraudRules, detect_fraud, empty_state
from flows.monitoring.realtime.transforms import top_products, window_metrics

CUSTOMERS = 1_000_000
PRODUCTS = 100_000
TRANSACTIONS_PER_ACCOUNT = 100
WINDOW_MINUTES = 5
TOP_N = 5
MAD_TO_SIGMA = 1.4826


def _frame(table: Any) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _events(rows: int) -> pl.DataFrame:
    return _frame(samples.events(rows, customer_count=CUSTOMERS, product_count=PRODUCTS))


def _references() -> tuple[pl.DataFrame, pl.DataFrame]:
    products = _frame(samples.products(PRODUCTS)).select(PRODUCT_COLUMNS)
    customers = _frame(samples.customers(CUSTOMERS)).select(CUSTOMER_COLUMNS)
    return products, customers


def _timed(rows: int, started: float, **extra: Any) -> dict[str, Any]:
    return {"seconds": perf_counter() - started, "rows": rows, **extra}


def enrichment_polars(params: dict[str, Any]) -> dict[str, Any]:
    """stream_enrichment.enriched_events: events ⋈ products ⋈ customers, collected."""
    events, (products, customers) = _events(int(params["rows"])), _references()
    started = perf_counter()
    enriched = enriched_events(events.lazy(), products.lazy(), customers.lazy()).collect()
    return _timed(events.height, started, output_rows=enriched.height)


def enrichment_pandas(params: dict[str, Any]) -> dict[str, Any]:
    """The same left joins and flags with DataFrame.merge."""
    polars_events, (polars_products, polars_customers) = (
        _events(int(params["rows"])),
        _references(),
    )
    events = polars_events.select(EVENT_COLUMNS).to_pandas()
    products = polars_products.to_pandas().rename(columns={"name": "product_name"})
    customers = polars_customers.to_pandas()
    started = perf_counter()
    enriched = events.merge(products.assign(product_matched=True), on="product_id", how="left")
    enriched = enriched.merge(customers.assign(customer_matched=True), on="customer_id", how="left")
    enriched["event_date"] = enriched["event_time"].dt.normalize()
    for flag in ("product_matched", "customer_matched"):
        enriched[flag] = enriched[flag].fillna(False).astype(bool)
    return _timed(len(events), started, output_rows=len(enriched))


def _transactions(rows: int) -> pl.DataFrame:
    accounts = max(1, rows // TRANSACTIONS_PER_ACCOUNT)
    return _frame(samples.transactions(rows, account_count=accounts))


def fraud_polars(params: dict[str, Any]) -> dict[str, Any]:
    """ml.fraud.rules.detect_fraud on one batch with an empty state: signals, alerts, next state."""
    batch = _transactions(int(params["rows"]))
    started = perf_counter()
    result = detect_fraud(batch, empty_state(), FraudRules(), datetime.now(UTC))
    return _timed(batch.height, started, alerts=result.alerts.height)


def _account_rules(group: pd.DataFrame, rules: FraudRules) -> pd.DataFrame:
    """The three rules for one account, the way a pandas user writes them."""
    g = group.sort_values(["occurred_at", "transaction_id"])
    window = f"{int(rules.velocity_window.total_seconds())}s"
    velocity = g.rolling(window, on="occurred_at", closed="right")["transaction_id"].count()
    log_amount = np.log1p(g["amount"])
    history = log_amount.shift(1).rolling(rules.history_size, min_periods=1)
    median = history.median()
    mad = history.apply(lambda w: np.median(np.abs(w - np.median(w))), raw=True)
    seen = np.minimum(np.arange(len(g)), rules.history_size)
    z = (log_amount - median) / (MAD_TO_SIGMA * mad)
    lat1, lon1 = np.radians(g["latitude"].shift(1)), np.radians(g["longitude"].shift(1))
    lat2, lon2 = np.radians(g["latitude"]), np.radians(g["longitude"])
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    distance = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))
    hours = g["occurred_at"].diff().dt.total_seconds() / 3600
    speed = distance / hours
    return g.assign(
        velocity=velocity.to_numpy() > rules.velocity_max,
        amount_anomaly=(seen >= rules.amount_min_history) & (z > rules.amount_z).to_numpy(),
        impossible_travel=(distance >= rules.min_travel_km) & (speed > rules.max_speed_kmh),
    )


def fraud_pandas(params: dict[str, Any]) -> dict[str, Any]:
    """groupby(account).apply of the same rules (velocity, robust amount z-score, travel)."""
    frame = _transactions(int(params["rows"])).to_pandas()
    rules = FraudRules()
    started = perf_counter()
    scored = frame.groupby("account_id", group_keys=False).apply(_account_rules, rules)
    flagged = int(scored[["velocity", "amount_anomaly", "impossible_travel"]].any(axis=1).sum())
    return _timed(len(frame), started, flagged=flagged)


def windows_polars(params: dict[str, Any]) -> dict[str, Any]:
    """realtime_analytics window_metrics (count, sum, mean, p95, p99) and top_products."""
    events = _events(int(params["rows"]))
    started = perf_counter()
    metrics = window_metrics(events, window_minutes=WINDOW_MINUTES)
    top = top_products(events, window_minutes=WINDOW_MINUTES, n=TOP_N)
    return _timed(events.height, started, windows=metrics.height, top_rows=top.height)


def windows_pandas(params: dict[str, Any]) -> dict[str, Any]:
    """The same with groupby().resample() and a sorted head(n) per window."""
    events = _events(int(params["rows"])).to_pandas().set_index("event_time")
    started = perf_counter()
    resampled = events.groupby("event_type").resample(f"{WINDOW_MINUTES}min")["value"]
    metrics = pd.concat(
        {
            "events": resampled.count(),
            "value_sum": resampled.sum(),
            "value_avg": resampled.mean(),
            "value_p95": resampled.quantile(0.95),
            "value_p99": resampled.quantile(0.99),
        },
        axis=1,
    )
    metrics = metrics[metrics["events"] > 0]
    per_product = (
        events.groupby([pd.Grouper(freq=f"{WINDOW_MINUTES}min"), "product_id"])["value"]
        .agg(events="size", value_sum="sum")
        .reset_index()
        .sort_values(
            ["event_time", "events", "value_sum", "product_id"],
            ascending=[True, False, False, True],
        )
    )
    top = per_product.groupby("event_time").head(TOP_N)
    return _timed(len(events), started, windows=len(metrics), top_rows=len(top))


def _duckdb() -> Any:
    """An in-memory DuckDB on this process's cores; its delta and httpfs extensions download
    at run time, so the baselines read the same in-memory Arrow tables as the flows."""
    import duckdb

    return duckdb.connect(config={"threads": os.cpu_count() or 1})


def enrichment_duckdb(params: dict[str, Any]) -> dict[str, Any]:
    """The same left joins and flags in DuckDB SQL over the Arrow tables."""
    events, (products, customers) = _events(int(params["rows"])), _references()
    database = _duckdb()
    for name, frame in (("events", events.select(EVENT_COLUMNS)), ("products", products),
                        ("customers", customers)):  # fmt: skip
        database.register(name, frame.to_arrow())
    started = perf_counter()
    enriched = database.sql(
        """
        SELECT e.*, p.name AS product_name, p.category, p.price,
               p.product_id IS NOT NULL AS product_matched,
               c.country, c.segment, c.customer_id IS NOT NULL AS customer_matched,
               CAST(e.event_time AS DATE) AS event_date
        FROM events e
        LEFT JOIN products p USING (product_id)
        LEFT JOIN customers c USING (customer_id)
        """
    ).to_arrow_table()
    return _timed(events.height, started, output_rows=enriched.num_rows)


def windows_duckdb(params: dict[str, Any]) -> dict[str, Any]:
    """The same window metrics (exact quantiles) and top-n products per window in DuckDB SQL."""
    events = _events(int(params["rows"]))
    database = _duckdb()
    database.register("events", events.to_arrow())
    window = f"INTERVAL {WINDOW_MINUTES} MINUTE"
    started = perf_counter()
    metrics = database.sql(
        f"""
        SELECT time_bucket({window}, event_time) AS window_start, event_type,
               count(*) AS events, sum(value) AS value_sum, avg(value) AS value_avg,
               quantile_cont(value, 0.95) AS value_p95, quantile_cont(value, 0.99) AS value_p99
        FROM events GROUP BY ALL ORDER BY window_start, event_type
        """
    ).to_arrow_table()
    top = database.sql(
        f"""
        SELECT * FROM (
            SELECT window_start, product_id, events, value_sum,
                   row_number() OVER (PARTITION BY window_start
                                      ORDER BY events DESC, value_sum DESC, product_id) AS rank
            FROM (SELECT time_bucket({window}, event_time) AS window_start, product_id,
                         count(*) AS events, sum(value) AS value_sum
                  FROM events WHERE product_id IS NOT NULL GROUP BY ALL))
        WHERE rank <= {TOP_N} ORDER BY window_start, rank
        """
    ).to_arrow_table()
    return _timed(events.height, started, windows=metrics.num_rows, top_rows=top.num_rows)
