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

# --- ml (flows/ml) ---
FRAUD_RULES = ("velocity", "amount_anomaly", "impossible_travel", "isolation_forest")
MODEL_STAGES = ("staging", "production", "archived")

ORDER_FEATURES = Table(
    "order_features",
    layer="gold",
    schema=pa.schema(
        [
            _required("order_id", pa.int64()),
            _required("customer_id", pa.int64()),
            _required("event_time", UTC_MICROS),
            ("hour_sin", pa.float64()),
            ("hour_cos", pa.float64()),
            ("weekday_sin", pa.float64()),
            ("weekday_cos", pa.float64()),
            ("is_weekend", pa.bool_()),
            ("quantity", pa.int64()),
            ("product_price", pa.float64()),
            ("category", pa.string()),
            ("segment", pa.string()),
            ("country", pa.string()),
            ("customer_orders_7d", pa.int64()),
            ("customer_orders_30d", pa.int64()),
            ("customer_amount_sum_7d", pa.float64()),
            ("customer_amount_mean_30d", pa.float64()),
            ("customer_days_since_previous_order", pa.float64()),
            ("customer_category_orders_before", pa.int64()),
            ("category_amount_mean_30d", pa.float64()),
            ("quantity_to_customer_mean_ratio", pa.float64()),
            ("price_to_category_mean_ratio", pa.float64()),
            ("last_event_type", pa.string()),
            ("minutes_since_last_event", pa.float64()),
            ("product_text", pa.string()),
            ("is_large_order", pa.bool_()),
        ]
    ),
    key=("order_id",),
    checks=(between("quantity", 1, 1_000),),
    description="One row per order with point-in-time correct features (only data from before"
    " the order) and the label is_large_order.",
    freshness_hours=24,
    tags=("ml", "features"),
)

FEATURE_METADATA = Table(
    "feature_metadata",
    layer="_ops",
    schema=pa.schema(
        [
            _required("feature_table", pa.string()),
            _required("feature", pa.string()),
            _required("family", pa.string()),
            ("dtype", pa.string()),
            ("description", pa.string()),
            ("source_versions", pa.string()),
            ("feature_table_version", pa.int64()),
            _required("built_at", UTC_MICROS),
        ]
    ),
    key=("feature_table", "feature"),
    newest_by="built_at",
    description="Each feature's family, type and the Delta versions of the tables it came from.",
    tags=("ml",),
)

MODEL_REGISTRY = Table(
    "model_registry",
    layer="_ops",
    schema=pa.schema(
        [
            _required("model_name", pa.string()),
            _required("version", pa.int64()),
            _required("stage", pa.string()),
            ("feature_table", pa.string()),
            ("target", pa.string()),
            ("time_column", pa.string()),
            ("features", pa.string()),
            ("params", pa.string()),
            ("metrics", pa.string()),
            ("input_versions", pa.string()),
            ("code_version", pa.string()),
            ("seed", pa.int64()),
            ("artifact_uri", pa.string()),
            ("promotion_note", pa.string()),
            _required("created_at", UTC_MICROS),
            _required("updated_at", UTC_MICROS),
        ]
    ),
    key=("model_name", "version"),
    newest_by="updated_at",
    checks=(one_of("stage", MODEL_STAGES),),
    description="Every trained model version: params, metrics (JSON), input table versions, code"
    " version, artifact location and stage.",
    tags=("ml",),
)

PREDICTIONS = Table(
    "predictions",
    layer="gold",
    schema=pa.schema(
        [
            _required("model_name", pa.string()),
            _required("row_key", pa.string()),
            _required("model_version", pa.int64()),
            ("feature_table", pa.string()),
            ("feature_table_version", pa.int64()),
            ("event_time", UTC_MICROS),
            ("score", pa.float64()),
            ("prediction", pa.bool_()),
            _required("scored_at", UTC_MICROS),
        ]
    ),
    key=("model_name", "row_key"),
    newest_by="scored_at",
    checks=(between("score", 0, 1),),
    description="Scores from the production model, one per feature-table row and model name.",
    tags=("ml",),
)

FRAUD_ALERTS = Table(
    "fraud_alerts",
    layer="gold",
    schema=pa.schema(
        [
            _required("transaction_id", pa.int64()),
            _required("rule", pa.string()),
            _required("account_id", pa.int64()),
            ("occurred_at", UTC_MICROS),
            ("amount", pa.float64()),
            ("evidence", pa.string()),
            _required("detected_at", UTC_MICROS),
        ]
    ),
    key=("transaction_id", "rule"),
    checks=(one_of("rule", FRAUD_RULES),),
    description="One row per transaction and fraud rule that fired, with the evidence as JSON.",
    freshness_hours=24,
    tags=("ml", "fraud"),
)

FRAUD_ACCOUNT_STATE = Table(
    "fraud_account_state",
    layer="_ops",
    schema=pa.schema(
        [
            _required("account_id", pa.int64()),
            ("transaction_ids", pa.list_(pa.int64())),
            ("occurred_at", pa.list_(UTC_MICROS)),
            ("amounts", pa.list_(pa.float64())),
            ("latitudes", pa.list_(pa.float64())),
            ("longitudes", pa.list_(pa.float64())),
            _required("last_seen_at", UTC_MICROS),
            _required("updated_at", UTC_MICROS),
        ]
    ),
    key=("account_id",),
    newest_by="updated_at",
    description="Each account's recent transactions, so fraud rules hold across batch boundaries.",
    tags=("ml", "fraud"),
)

ML_TABLES: tuple[Table, ...] = (
    ORDER_FEATURES,
    FEATURE_METADATA,
    MODEL_REGISTRY,
    PREDICTIONS,
    FRAUD_ALERTS,
    FRAUD_ACCOUNT_STATE,
)
# --- end ml ---

# --- etl ingestion, enrichment, batch processing, erasure (flows/etl) ---
INGEST_STATE = Table(
    "ingest_state",
    layer="_ops",
    schema=pa.schema(
        [
            _required("source", pa.string()),
            _required("position", pa.string()),
            ("rows", pa.int64()),
            ("run_id", pa.string()),
            _required("updated_at", UTC_MICROS),
        ]
    ),
    key=("source",),
    newest_by="updated_at",
    description="How far each incremental source has been ingested (a watermark or a page);"
    " moved only after the lake commits of that unit.",
    tags=("etl", "state"),
)

ENRICHED_EVENTS = Table(
    "enriched_events",
    layer="gold",
    schema=pa.schema(
        [
            _required("event_id", pa.int64()),
            _required("event_date", pa.date32()),
            _required("event_time", UTC_MICROS),
            _required("event_type", pa.string()),
            ("value", pa.float64()),
            _required("customer_id", pa.int64()),
            ("product_id", pa.int64()),
            ("product_name", pa.string()),
            ("category", pa.string()),
            ("price", pa.float64()),
            ("country", pa.string()),
            ("segment", pa.string()),
            _required("product_matched", pa.bool_()),
            _required("customer_matched", pa.bool_()),
        ]
    ),
    key=("event_id",),
    partition_by=("event_date",),
    description="Events with the current product and customer attributes; an event whose product"
    " or customer is unknown is kept with *_matched = false.",
    freshness_hours=6,
    tags=("etl",),
)

SCORED_TRANSACTIONS = Table(
    "scored_transactions",
    layer="silver",
    schema=pa.schema(
        [
            _required("transaction_id", pa.int64()),
            _required("account_id", pa.int64()),
            _required("amount", pa.float64()),
            ("merchant_category", pa.string()),
            _required("occurred_at", UTC_MICROS),
            _required("occurred_date", pa.date32()),
            _required("is_large", pa.bool_()),
            _required("is_night", pa.bool_()),
            _required("risk_score", pa.float64()),
        ]
    ),
    key=("transaction_id",),
    partition_by=("occurred_date",),
    checks=(between("risk_score", 0, 1),),
    description="Transactions with rule-based risk flags, processed one day per batch.",
    tags=("etl",),
)

ERASURES = Table(
    "erasures",
    layer="_ops",
    schema=pa.schema(
        [
            _required("erasure_id", pa.string()),
            _required("table", pa.string()),
            _required("subject_ref", pa.string()),
            ("requested_by", pa.string()),
            ("request_ref", pa.string()),
            _required("rows_deleted", pa.int64()),
            _required("files_removed", pa.int64()),
            ("table_version", pa.int64()),
            ("run_id", pa.string()),
            _required("erased_at", UTC_MICROS),
        ]
    ),
    key=("erasure_id", "table"),
    description="GDPR erasures: who asked, when, which tables and how many rows; the subject only"
    " as a fingerprint, never the erased data.",
    tags=("etl", "gdpr"),
)


def source_bronze(table: Table, source_kind: str) -> Table:
    """Raw rows for `table` from one kind of source (`postgres`, `api`), typed as delivered."""
    return Table(
        f"{table.name}_{source_kind}",
        "bronze",
        description=f"Raw rows for {table.path} from {source_kind}, as delivered.",
    )


INGEST_SOURCE_KINDS = ("postgres", "api")
ETL_TABLES: tuple[Table, ...] = (INGEST_STATE, ENRICHED_EVENTS, SCORED_TRANSACTIONS, ERASURES)
# --- end etl ---

# --- monitoring (flows/monitoring: data_quality_monitor, pipeline_health) ---
SEVERITIES = ("critical", "warning")
METRIC_KINDS = ("flow", "table")

QUALITY_RESULTS = Table(
    "quality_results",
    layer="_ops",
    schema=pa.schema(
        [
            _required("run_id", pa.string()),
            _required("checked_at", UTC_MICROS),
            _required("table", pa.string()),
            ("table_version", pa.int64()),
            _required("check", pa.string()),
            ("column", pa.string()),
            _required("severity", pa.string()),
            _required("success", pa.bool_()),
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
            _required("run_id", pa.string()),
            _required("measured_at", UTC_MICROS),
            _required("window_hours", pa.float64()),
            _required("kind", pa.string()),
            _required("subject", pa.string()),
            ("flow_name", pa.string()),
            _required("metric", pa.string()),
            ("value", pa.float64()),
        ]
    ),
    checks=(one_of("kind", METRIC_KINDS),),
    description="Pipeline health per measurement (long format): per flow its runs, rates,"
    " durations and late runs; per table and writing flow its commits and rows written.",
    freshness_hours=3,
    tags=("monitoring",),
)

MONITORING_TABLES: tuple[Table, ...] = (QUALITY_RESULTS, PIPELINE_METRICS)
# --- end monitoring ---

# --- etl s3 data pipeline (flows/etl/s3_data_pipeline.py) ---
LANDING_FILE_STATUSES = ("bronze", "done", "empty", "failed")

LANDING_FILES = Table(
    "landing_files",
    layer="_ops",
    schema=pa.schema(
        [
            _required("batch_id", pa.string()),
            _required("source_file", pa.string()),
            _required("source", pa.string()),
            ("size", pa.int64()),
            ("tag", pa.string()),
            _required("status", pa.string()),
            ("rows", pa.int64()),
            ("quarantined", pa.int64()),
            ("new_columns", pa.string()),
            ("error", pa.string()),
            ("run_id", pa.string()),
            _required("updated_at", UTC_MICROS),
        ]
    ),
    key=("batch_id",),
    newest_by="updated_at",
    checks=(one_of("status", LANDING_FILE_STATUSES),),
    description="Every landing file the S3 data pipeline has seen (one row per delivery: path,"
    " size and content tag), how far it got and why it failed; makes the listing incremental.",
    tags=("etl", "state"),
)

DAILY_CATEGORY_REVENUE = Table(
    "daily_category_revenue",
    layer="gold",
    schema=pa.schema(
        [
            _required("order_date", pa.date32()),
            _required("category", pa.string()),
            _required("orders", pa.int64()),
            _required("units", pa.int64()),
            _required("revenue", pa.float64()),
        ]
    ),
    key=("order_date", "category"),
    partition_by=("order_date",),
    checks=(between("orders", 0, None), between("units", 0, None), between("revenue", 0, None)),
    description="Orders, units and revenue (cancelled orders excluded) per day and product"
    " category; a run rebuilds only the days it touched.",
    freshness_hours=24,
    tags=("etl",),
)

CUSTOMER_LIFETIME_VALUE = Table(
    "customer_lifetime_value",
    layer="gold",
    schema=pa.schema(
        [
            _required("customer_id", pa.int64()),
            _required("orders", pa.int64()),
            _required("revenue", pa.float64()),
            _required("average_order_value", pa.float64()),
            _required("first_order_date", pa.date32()),
            _required("last_order_date", pa.date32()),
        ]
    ),
    key=("customer_id",),
    checks=(between("orders", 1, None), between("revenue", 0, None)),
    description="Orders and revenue per customer over all time (cancelled orders excluded);"
    " a run recomputes only the customers it touched.",
    freshness_hours=24,
    tags=("etl",),
)

S3_PIPELINE_TABLES: tuple[Table, ...] = (
    LANDING_FILES,
    DAILY_CATEGORY_REVENUE,
    CUSTOMER_LIFETIME_VALUE,
)
# --- end etl s3 data pipeline ---

# --- monitoring: table maintenance, realtime analytics, sales anomalies (flows/monitoring) ---
EVENT_WINDOW_METRICS = Table(
    "event_window_metrics",
    layer="gold",
    schema=pa.schema(
        [
            _required("window_minutes", pa.int64()),
            _required("window_start", UTC_MICROS),
            _required("window_end", UTC_MICROS),
            _required("event_type", pa.string()),
            _required("events", pa.int64()),
            ("value_sum", pa.float64()),
            ("value_avg", pa.float64()),
            ("value_p95", pa.float64()),
            ("value_p99", pa.float64()),
            _required("computed_at", UTC_MICROS),
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
            _required("window_minutes", pa.int64()),
            _required("window_start", UTC_MICROS),
            _required("rank", pa.int64()),
            _required("product_id", pa.int64()),
            _required("events", pa.int64()),
            ("value_sum", pa.float64()),
            _required("computed_at", UTC_MICROS),
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
            _required("consumer", pa.string()),
            *(EVENTS.schema or ()),
            _required("window_start", UTC_MICROS),
            _required("watermark", UTC_MICROS),
            _required("detected_at", UTC_MICROS),
        ]
    ),
    key=("consumer", "event_id"),
    newest_by="detected_at",
    description="Events that arrived after their window closed (later than the allowed lateness);"
    " kept, never counted in a closed window.",
    tags=("monitoring", "realtime"),
)

STREAM_OFFSETS = Table(
    "stream_offsets",
    layer="_ops",
    schema=pa.schema(
        [
            _required("consumer", pa.string()),
            _required("source", pa.string()),
            _required("version", pa.int64()),
            ("watermark", UTC_MICROS),
            _required("updated_at", UTC_MICROS),
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
            _required("report_id", pa.string()),
            _required("anomaly_id", pa.string()),
            _required("kind", pa.string()),
            _required("metric", pa.string()),
            _required("order_date", pa.date32()),
            ("order_id", pa.int64()),
            _required("value", pa.float64()),
            _required("median", pa.float64()),
            _required("robust_z", pa.float64()),
            _required("orders_version", pa.int64()),
            ("approval_comment", pa.string()),
            _required("published_at", UTC_MICROS),
        ]
    ),
    key=("report_id", "anomaly_id"),
    checks=(one_of("kind", ("order", "day")),),
    description="Approved sales anomaly reports: outlier orders and suspicious days (robust"
    " z-score on median/MAD), published only after a person approved the report.",
    tags=("monitoring", "sales"),
)

ANALYTICS_TABLES: tuple[Table, ...] = (
    EVENT_WINDOW_METRICS,
    EVENT_WINDOW_TOP_PRODUCTS,
    LATE_EVENTS,
    STREAM_OFFSETS,
    SALES_ANOMALIES,
)
# --- end monitoring: table maintenance, realtime analytics, sales anomalies ---

CATALOG: tuple[Table, ...] = (
    CUSTOMERS,
    PRODUCTS,
    ORDERS,
    TRANSACTIONS,
    EVENTS,
    DAILY_ORDER_TOTALS,
    *ML_TABLES,
    *MONITORING_TABLES,
    *ETL_TABLES,
    *S3_PIPELINE_TABLES,
    *ANALYTICS_TABLES,
)
