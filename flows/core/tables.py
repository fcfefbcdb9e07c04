"""The catalog: every table contract in the lake, declared once."""

from __future__ import annotations

import pyarrow as pa

from flows.core.checks import between, matches, one_of
from flows.core.contracts import Table
from flows.core.samples import (
    CATEGORIES,
    EVENT_TYPES,
    MERCHANT_CATEGORIES,
    ORDER_STATUSES,
    SEGMENTS,
)

UTC_MICROS = pa.timestamp("us", tz="UTC")


def _required(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=False)


CUSTOMERS = Table(
    "customers",
    layer="silver",
    schema=pa.schema(
        [
            _required("customer_id", pa.int64()),
            ("name", pa.string()),
            ("email", pa.string()),
            ("country", pa.string()),
            ("segment", pa.string()),
            ("signup_date", pa.date32()),
            _required("updated_at", UTC_MICROS),
        ]
    ),
    key=("customer_id",),
    newest_by="updated_at",
    checks=(
        matches("email", r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        matches("country", r"^[A-Z]{2}$"),
        one_of("segment", SEGMENTS),
    ),
    description="One row per customer; a later update wins.",
    freshness_hours=48,
)

PRODUCTS = Table(
    "products",
    layer="silver",
    schema=pa.schema(
        [
            _required("product_id", pa.int64()),
            ("name", pa.string()),
            ("category", pa.string()),
            ("price", pa.float64()),
            _required("updated_at", UTC_MICROS),
        ]
    ),
    key=("product_id",),
    newest_by="updated_at",
    checks=(one_of("category", CATEGORIES), between("price", 0, 100_000)),
    description="The product catalogue; a later update wins.",
    freshness_hours=48,
)

ORDERS = Table(
    "orders",
    layer="silver",
    schema=pa.schema(
        [
            _required("order_id", pa.int64()),
            _required("customer_id", pa.int64()),
            ("product_id", pa.int64()),
            ("quantity", pa.int64()),
            ("amount", pa.float64()),
            ("status", pa.string()),
            _required("order_date", pa.date32()),
            _required("updated_at", UTC_MICROS),
        ]
    ),
    key=("order_id",),
    partition_by=("order_date",),
    newest_by="updated_at",
    checks=(
        between("amount", 0, 1_000_000),
        between("quantity", 1, 1_000),
        one_of("status", ORDER_STATUSES),
    ),
    description="One row per order; a later update wins.",
    freshness_hours=24,
)

TRANSACTIONS = Table(
    "transactions",
    layer="silver",
    schema=pa.schema(
        [
            _required("transaction_id", pa.int64()),
            _required("account_id", pa.int64()),
            _required("amount", pa.float64()),
            ("merchant_category", pa.string()),
            ("latitude", pa.float64()),
            ("longitude", pa.float64()),
            _required("occurred_at", UTC_MICROS),
        ]
    ),
    key=("transaction_id",),
    checks=(
        between("amount", 0, 10_000_000),
        between("latitude", -90, 90),
        between("longitude", -180, 180),
        one_of("merchant_category", MERCHANT_CATEGORIES),
    ),
    description="Card transactions, one row each.",
    freshness_hours=24,
)

EVENTS = Table(
    "events",
    layer="silver",
    schema=pa.schema(
        [
            _required("event_id", pa.int64()),
            _required("customer_id", pa.int64()),
            ("product_id", pa.int64()),
            _required("event_type", pa.string()),
            ("value", pa.float64()),
            _required("event_time", UTC_MICROS),
        ]
    ),
    key=("event_id",),
    checks=(one_of("event_type", EVENT_TYPES), between("value", 0, None)),
    description="Clickstream events from the shop.",
    freshness_hours=6,
)

DAILY_ORDER_TOTALS = Table(
    "daily_order_totals",
    layer="gold",
    schema=pa.schema(
        [
            _required("order_date", pa.date32()),
            _required("status", pa.string()),
            _required("orders", pa.int64()),
            _required("revenue", pa.float64()),
        ]
    ),
    key=("order_date", "status"),
    partition_by=("order_date",),
    checks=(between("orders", 0, None), between("revenue", 0, None)),
    description="Orders and revenue per day and status, rebuilt for the days a run touched.",
    freshness_hours=24,
)

CATALOG: tuple[Table, ...] = (CUSTOMERS, PRODUCTS, ORDERS, TRANSACTIONS, EVENTS, DAILY_ORDER_TOTALS)
