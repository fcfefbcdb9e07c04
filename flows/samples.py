"""Deterministic sample data (same seed, same rows) for the catalog's tables, so every flow has
realistic data offline; values come from the allowed values declared beside each table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from flows.catalog import (
    CATEGORIES,
    EVENT_TYPES,
    MERCHANT_CATEGORIES,
    ORDER_STATUSES,
    SEGMENTS,
)
from flows.core.http_pages import text_value

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "BR", "IN", "JP")


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _timestamps(rng: np.random.Generator, rows: int, days: int) -> pa.Array:
    seconds = np.sort(rng.integers(0, days * 86_400, rows))
    micros = (np.datetime64(EPOCH.replace(tzinfo=None), "us") + seconds * 1_000_000).astype(
        "datetime64[us]"
    )
    return pa.array(micros, pa.timestamp("us", tz="UTC"))


def _dates(timestamps: pa.Array) -> pa.Array:
    return timestamps.cast(pa.timestamp("us")).cast(pa.date32())


def customers(rows: int = 1_000, *, seed: int = 7) -> pa.Table:
    rng = _rng(seed)
    ids = np.arange(1, rows + 1, dtype=np.int64)
    signup = _timestamps(rng, rows, 365)
    return pa.table(
        {
            "customer_id": ids,
            "name": [f"Customer {i}" for i in ids],
            "email": [f"customer{i}@example.com" for i in ids],
            "country": np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), rows)],
            "segment": np.array(SEGMENTS)[rng.choice(3, rows, p=[0.7, 0.2, 0.1])],
            "signup_date": _dates(signup),
            "updated_at": signup,
        }
    )


def products(rows: int = 200, *, seed: int = 11) -> pa.Table:
    rng = _rng(seed)
    ids = np.arange(1, rows + 1, dtype=np.int64)
    return pa.table(
        {
            "product_id": ids,
            "name": [f"Product {i}" for i in ids],
            "category": np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), rows)],
            "price": np.round(rng.lognormal(3.0, 0.8, rows), 2),
            "updated_at": _timestamps(rng, rows, 30),
        }
    )


def orders(
    rows: int = 10_000, *, seed: int = 42, customer_count: int = 1_000, product_count: int = 200
) -> pa.Table:
    rng = _rng(seed)
    placed_at = _timestamps(rng, rows, 90)
    quantity = rng.integers(1, 6, rows)
    unit_price = np.round(rng.lognormal(3.0, 0.8, rows), 2)
    return pa.table(
        {
            "order_id": np.arange(1, rows + 1, dtype=np.int64),
            "customer_id": rng.integers(1, customer_count + 1, rows, dtype=np.int64),
            "product_id": rng.integers(1, product_count + 1, rows, dtype=np.int64),
            "quantity": quantity.astype(np.int64),
            "amount": np.round(quantity * unit_price, 2),
            "status": np.array(ORDER_STATUSES)[rng.choice(4, rows, p=[0.2, 0.3, 0.45, 0.05])],
            "order_date": _dates(placed_at),
            "updated_at": placed_at,
        }
    )


def transactions(rows: int = 10_000, *, seed: int = 5, account_count: int = 500) -> pa.Table:
    rng = _rng(seed)
    accounts = rng.integers(1, account_count + 1, rows, dtype=np.int64)
    home_lat = rng.uniform(-60, 70, account_count + 1)
    home_lon = rng.uniform(-180, 180, account_count + 1)
    return pa.table(
        {
            "transaction_id": np.arange(1, rows + 1, dtype=np.int64),
            "account_id": accounts,
            "amount": np.round(rng.lognormal(3.5, 1.0, rows), 2),
            "merchant_category": np.array(MERCHANT_CATEGORIES)[
                rng.integers(0, len(MERCHANT_CATEGORIES), rows)
            ],
            "latitude": np.round(home_lat[accounts] + rng.normal(0, 0.05, rows), 5),
            "longitude": np.round(home_lon[accounts] + rng.normal(0, 0.05, rows), 5),
            "occurred_at": _timestamps(rng, rows, 30),
        }
    )


def events(
    rows: int = 10_000, *, seed: int = 3, customer_count: int = 1_000, product_count: int = 200
) -> pa.Table:
    rng = _rng(seed)
    return pa.table(
        {
            "event_id": np.arange(1, rows + 1, dtype=np.int64),
            "customer_id": rng.integers(1, customer_count + 1, rows, dtype=np.int64),
            "product_id": rng.integers(1, product_count + 1, rows, dtype=np.int64),
            "event_type": np.array(EVENT_TYPES)[rng.integers(0, len(EVENT_TYPES), rows)],
            "value": np.round(rng.exponential(20.0, rows), 2),
            "event_time": _timestamps(rng, rows, 7),
        }
    )


MALFORMED_ORDER_RECORDS: tuple[dict[str, Any], ...] = (
    {"order_id": "900001", "customer_id": "1", "product_id": "1", "quantity": "2",
     "amount": "twelve", "status": "placed", "order_date": "2024-02-01",
     "updated_at": "2024-02-01T10:00:00+00:00"},
    {"order_id": None, "customer_id": "2", "product_id": "3", "quantity": "1",
     "amount": "19.99", "status": "shipped", "order_date": "2024-02-01",
     "updated_at": "2024-02-01T11:00:00+00:00"},
    {"order_id": "900003", "customer_id": "3", "product_id": "2", "quantity": "1",
     "amount": "-50.00", "status": "placed", "order_date": "2024-02-02",
     "updated_at": "2024-02-02T09:30:00+00:00"},
)  # fmt: skip


def order_records(
    rows: int = 1_000, *, seed: int = 42, malformed: bool = True
) -> list[dict[str, Any]]:
    """Orders as an API delivers them (JSON, every value a string), plus three malformed rows."""
    table = orders(rows, seed=seed)
    records = [
        {name: text_value(value) for name, value in row.items()} for row in table.to_pylist()
    ]
    return records + [dict(r) for r in MALFORMED_ORDER_RECORDS] if malformed else records
