"""The tables the example flows own."""

from __future__ import annotations

import pyarrow as pa

from flows.core.checks import between
from flows.core.contracts import Table, required

DAILY_ORDER_TOTALS = Table(
    "daily_order_totals",
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
    description="Orders and revenue per day and status, rebuilt for the days a run touched.",
    freshness_hours=24,
    monitor_checks=(between("orders", 1, None),),
)


AWS_EXAMPLE_ORDERS = Table(
    "aws_example_orders",
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


TABLES: tuple[Table, ...] = (DAILY_ORDER_TOTALS, AWS_EXAMPLE_ORDERS)
