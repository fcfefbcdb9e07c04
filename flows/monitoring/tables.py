"""The tables the monitoring flows own: quality results, pipeline metrics, stream windows and
sales anomalies.
"""

from __future__ import annotations

import pyarrow as pa

from flows.core.checks import between, one_of
from flows.core.contracts import UTC_MICROS, Table, required

SEVERITIES = ("critical", "warning")
METRIC_KINDS = ("flow", "table")

QUALITY_RESULTS = Table(
    "quality_results",
    layer="_ops",
    schema=pa.schema(
        [
            required("run_id", pa.string()),
            required("checked_at", UTC_MICROS),
            required("table", pa.string()),
            ("table_version", pa.int64()),
            required("check", pa.string()),
            ("column", pa.string()),
            required("severity", pa.string()),
            required("success", pa.bool_()),
            ("observed", pa.string()),
            ("expected", pa.string()),
            ("unexpected_count", pa.int64()),
            ("element_count", pa.int64()),
            ("rows_checked", pa.int64()),
            ("rows_total", pa.int64()),
        ]
    ),
    checks=(one_of("severity", SEVERITIES),),
    description="Every quality check of every monitor run (GX expectations, freshness, volume,"
    " schema drift); a run replaces its own rows, so a retry never duplicates them.",
    tags=("monitoring",),
)


PIPELINE_METRICS = Table(
    "pipeline_metrics",
    layer="_ops",
    schema=pa.schema(
        [
            required("run_id", pa.string()),
            required("measured_at", UTC_MICROS),
            required("window_hours", pa.float64()),
            required("kind", pa.string()),
            required("subject", pa.string()),
            ("flow_name", pa.string()),
            required("metric", pa.string()),
            ("value", pa.float64()),
        ]
    ),
    checks=(one_of("kind", METRIC_KINDS),),
    description="Pipeline health per measurement (long format): per flow its runs, rates,"
    " durations and late runs; per table and writing flow its commits and rows written.",
    freshness_hours=3,
    tags=("monitoring",),
)


EVENT_WINDOW_METRICS = Table(
    "event_window_metrics",
    layer="gold",
    schema=pa.schema(
        [
            required("window_minutes", pa.int64()),
            required("window_start", UTC_MICROS),
            required("window_end", UTC_MICROS),
            required("event_type", pa.string()),
            required("events", pa.int64()),
            ("value_sum", pa.float64()),
            ("value_avg", pa.float64()),
            ("value_p95", pa.float64()),
            ("value_p99", pa.float64()),
            required("computed_at", UTC_MICROS),
        ]
    ),
    key=("window_minutes", "window_start", "event_type"),
    newest_by="computed_at",
    checks=(between("events", 1, None),),
    description="Events per tumbling window and event type: count, sum, mean, exact p95/p99 of"
    " value; a late event recomputes its window.",
    freshness_hours=6,
    tags=("monitoring", "realtime"),
)


EVENT_WINDOW_TOP_PRODUCTS = Table(
    "event_window_top_products",
    layer="gold",
    schema=pa.schema(
        [
            required("window_minutes", pa.int64()),
            required("window_start", UTC_MICROS),
            required("rank", pa.int64()),
            required("product_id", pa.int64()),
            required("events", pa.int64()),
            ("value_sum", pa.float64()),
            required("computed_at", UTC_MICROS),
        ]
    ),
    key=("window_minutes", "window_start", "rank"),
    newest_by="computed_at",
    checks=(between("rank", 1, None),),
    description="The most active products of each tumbling window (by events, then value).",
    freshness_hours=6,
    tags=("monitoring", "realtime"),
)


LATE_EVENTS = Table(
    "late_events",
    layer="quarantine",
    schema=pa.schema(
        [
            required("consumer", pa.string()),
            required("event_id", pa.int64()),
            required("customer_id", pa.int64()),
            ("product_id", pa.int64()),
            required("event_type", pa.string()),
            ("value", pa.float64()),
            required("event_time", UTC_MICROS),
            required("window_start", UTC_MICROS),
            required("watermark", UTC_MICROS),
            required("detected_at", UTC_MICROS),
        ]
    ),
    key=("consumer", "event_id"),
    newest_by="detected_at",
    description="Events that arrived after their window closed (later than the allowed lateness),"
    " with silver/events' columns; kept, never counted in a closed window.",
    tags=("monitoring", "realtime"),
)


STREAM_OFFSETS = Table(
    "stream_offsets",
    layer="_ops",
    schema=pa.schema(
        [
            required("consumer", pa.string()),
            required("source", pa.string()),
            required("version", pa.int64()),
            ("watermark", UTC_MICROS),
            required("updated_at", UTC_MICROS),
        ]
    ),
    key=("consumer",),
    newest_by="updated_at",
    description="How far each stream consumer has read its source (Delta version) and its event"
    " time watermark; moved only after the consumer's outputs are committed.",
    tags=("monitoring", "state"),
)


SALES_ANOMALIES = Table(
    "sales_anomalies",
    layer="gold",
    schema=pa.schema(
        [
            required("report_id", pa.string()),
            required("anomaly_id", pa.string()),
            required("kind", pa.string()),
            required("metric", pa.string()),
            required("order_date", pa.date32()),
            ("order_id", pa.int64()),
            required("value", pa.float64()),
            required("median", pa.float64()),
            required("robust_z", pa.float64()),
            required("orders_version", pa.int64()),
            ("approval_comment", pa.string()),
            required("published_at", UTC_MICROS),
        ]
    ),
    key=("report_id", "anomaly_id"),
    checks=(one_of("kind", ("order", "day")),),
    description="Approved sales anomaly reports: outlier orders and suspicious days (robust"
    " z-score on median/MAD), published only after a person approved the report.",
    tags=("monitoring", "sales"),
)


TABLES: tuple[Table, ...] = (
    QUALITY_RESULTS,
    PIPELINE_METRICS,
    EVENT_WINDOW_METRICS,
    EVENT_WINDOW_TOP_PRODUCTS,
    LATE_EVENTS,
    STREAM_OFFSETS,
    SALES_ANOMALIES,
)
