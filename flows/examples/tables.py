"""The tables the example flows own: an examples namespace, so their sample rows never reach the
tables the production flows own (silver/orders, silver/customers, ...)."""

from __future__ import annotations

import pyarrow as pa

from flows.core.checks import between, matches, one_of
from flows.core.contracts import UTC_MICROS, Table, required

EXAMPLE_STATUSES = ("placed", "shipped", "delivered", "cancelled")
EXAMPLE_SEGMENTS = ("consumer", "small_business", "enterprise")

EXAMPLE_ORDERS = Table(
    "example_orders",
    layer="silver",
    schema=pa.schema(
        [
            required("order_id", pa.int64()),
            required("customer_id", pa.int64()),
            ("product_id", pa.int64()),
            ("quantity", pa.int64()),
            ("amount", pa.float64()),
            ("status", pa.string()),
            required("order_date", pa.date32()),
            required("updated_at", UTC_MICROS),
        ]
    ),
    key=("order_id",),
    partition_by=("order_date",),
    newest_by="updated_at",
    checks=(
        between("amount", 0, 1_000_000),
        between("quantity", 1, 1_000),
        one_of("status", EXAMPLE_STATUSES),
    ),
    description="The Basic ETL example's orders (sample data or a given API); a later update wins.",
    ingested=True,
)


EXAMPLE_CUSTOMERS = Table(
    "example_customers",
    layer="silver",
    schema=pa.schema(
        [
            required("customer_id", pa.int64()),
            ("name", pa.string()),
            ("email", pa.string()),
            ("country", pa.string()),
            ("segment", pa.string()),
            ("signup_date", pa.date32()),
            required("updated_at", UTC_MICROS),
        ]
    ),
    key=("customer_id",),
    newest_by="updated_at",
    checks=(matches("email", r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), one_of("segment", EXAMPLE_SEGMENTS)),
    description="The template flow's sample customers; a later update wins.",
    personal=("name", "email"),
    identifying=("email",),
)


EXAMPLE_DAILY_ORDER_TOTALS = Table(
    "example_daily_order_totals",
    layer="gold",
    schema=pa.schema(
        [
            required("order_date", pa.date32()),
            required("status", pa.string()),
            required("orders", pa.int64()),
            required("revenue", pa.float64()),
        ]
    ),
    key=("order_date", "status"),
    partition_by=("order_date",),
    checks=(between("orders", 0, None), between("revenue", 0, None)),
    description="Orders and revenue per day and status of silver/example_orders, rebuilt for the"
    " days a run touched.",
    freshness_hours=24,
    monitor_checks=(between("orders", 1, None),),
)


EXAMPLE_AWS_ORDERS = Table(
    "example_aws_orders",
    layer="silver",
    schema=pa.schema(
        [
            required("order_id", pa.int64()),
            required("customer_id", pa.int64()),
            required("amount", pa.float64()),
            required("status", pa.string()),
            required("order_date", pa.date32()),
        ]
    ),
    key=("order_id",),
    checks=(between("amount", 0, None),),
    description="Sample orders the AWS integration example lands on S3 and registers in Glue.",
)


TABLES: tuple[Table, ...] = (
    EXAMPLE_ORDERS,
    EXAMPLE_CUSTOMERS,
    EXAMPLE_DAILY_ORDER_TOTALS,
    EXAMPLE_AWS_ORDERS,
)
