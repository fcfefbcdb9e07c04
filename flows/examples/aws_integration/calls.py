"""Pure helpers of the AWS integration example: the landed file, metric data, the run's record."""

from __future__ import annotations

import hashlib
import hmac
import io
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from pydantic import SecretStr

from flows.core.errors import ConfigurationError

ORDER_COLUMNS = ("order_id", "customer_id", "amount", "status", "order_date")


@dataclass(frozen=True)
class Call:
    """One AWS call the run made and what came of it (never a secret's value)."""

    service: str
    call: str
    target: str
    result: str


def bucket_name(bucket: str | None, s3_lake_root: str | None) -> str:
    """The landing bucket: the one asked for, else the lake's own bucket."""
    if bucket:
        return bucket
    if s3_lake_root:
        return s3_lake_root.removeprefix("s3://").split("/")[0]
    raise ConfigurationError("pass --bucket, or set LAKE_URI to s3://<bucket>/<prefix>")


def orders_csv(orders: pa.Table) -> bytes:
    """The order columns the example lands, as CSV bytes."""
    buffer = io.BytesIO()
    pacsv.write_csv(orders.select(list(ORDER_COLUMNS)), buffer)
    return buffer.getvalue()


def parse_orders_csv(data: bytes, schema: pa.Schema) -> pa.Table:
    """CSV bytes read back with the types of `schema`."""
    options = pacsv.ConvertOptions(column_types={f.name: f.type for f in schema})
    return pacsv.read_csv(io.BytesIO(data), convert_options=options).cast(schema)


def metric_data(flow_name: str, rows: int, duration_seconds: float) -> list[dict[str, Any]]:
    """CloudWatch `MetricData` for one run: rows processed and duration, per flow."""
    dimensions = [{"Name": "Flow", "Value": flow_name}]
    return [
        {"MetricName": "RowsProcessed", "Dimensions": dimensions, "Value": rows, "Unit": "Count"},
        {
            "MetricName": "DurationSeconds",
            "Dimensions": dimensions,
            "Value": round(duration_seconds, 3),
            "Unit": "Seconds",
        },
    ]


def outcome_message(flow_name: str, run_name: str, outcome: str, calls: list[Call]) -> str:
    """The SNS message for the run's outcome: one line per call made."""
    lines = [f"{flow_name} run {run_name}: {outcome}"]
    lines += [f"- {c.service} {c.call} {c.target}: {c.result}" for c in calls]
    return "\n".join(lines)


def signature(data: bytes, key: SecretStr) -> str:
    """An HMAC-SHA256 of `data` under the secret: what a receiver checks a delivery with."""
    return hmac.new(key.get_secret_value().encode(), data, hashlib.sha256).hexdigest()
