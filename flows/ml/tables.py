"""The tables the ml flows own: features, the model registry, predictions and fraud state."""

from __future__ import annotations

import pyarrow as pa

from flows.core.checks import between, one_of
from flows.core.contracts import UTC_MICROS, Table, required

FRAUD_RULES = ("velocity", "amount_anomaly", "impossible_travel", "isolation_forest")
MODEL_STAGES = ("staging", "production", "archived")

ORDER_FEATURES = Table(
    "order_features",
    layer="gold",
    schema=pa.schema(
        [
            required("order_id", pa.int64()),
            required("customer_id", pa.int64()),
            required("event_time", UTC_MICROS),
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
    newest_by="event_time",
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
            required("feature_table", pa.string()),
            required("feature", pa.string()),
            required("family", pa.string()),
            ("dtype", pa.string()),
            ("description", pa.string()),
            ("source_versions", pa.string()),
            ("feature_table_version", pa.int64()),
            required("built_at", UTC_MICROS),
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
            required("model_name", pa.string()),
            required("version", pa.int64()),
            required("stage", pa.string()),
            ("feature_table", pa.string()),
            ("target", pa.string()),
            ("time_column", pa.string()),
            ("key_columns", pa.string()),
            ("features", pa.string()),
            ("params", pa.string()),
            ("metrics", pa.string()),
            ("input_versions", pa.string()),
            ("code_version", pa.string()),
            ("seed", pa.int64()),
            ("artifact_uri", pa.string()),
            ("promotion_note", pa.string()),
            required("created_at", UTC_MICROS),
            required("updated_at", UTC_MICROS),
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
            required("model_name", pa.string()),
            required("row_key", pa.string()),
            required("model_version", pa.int64()),
            ("feature_table", pa.string()),
            ("feature_table_version", pa.int64()),
            ("event_time", UTC_MICROS),
            ("score", pa.float64()),
            ("prediction", pa.bool_()),
            required("scored_at", UTC_MICROS),
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
            required("transaction_id", pa.int64()),
            required("rule", pa.string()),
            required("account_id", pa.int64()),
            ("occurred_at", UTC_MICROS),
            ("amount", pa.float64()),
            ("evidence", pa.string()),
            required("detected_at", UTC_MICROS),
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
            required("account_id", pa.int64()),
            ("transaction_ids", pa.list_(pa.int64())),
            ("occurred_at", pa.list_(UTC_MICROS)),
            ("amounts", pa.list_(pa.float64())),
            ("latitudes", pa.list_(pa.float64())),
            ("longitudes", pa.list_(pa.float64())),
            required("last_seen_at", UTC_MICROS),
            required("updated_at", UTC_MICROS),
        ]
    ),
    key=("account_id",),
    newest_by="updated_at",
    description="Each account's recent transactions, so fraud rules hold across batch boundaries.",
    tags=("ml", "fraud"),
)


TABLES: tuple[Table, ...] = (
    ORDER_FEATURES,
    FEATURE_METADATA,
    MODEL_REGISTRY,
    PREDICTIONS,
    FRAUD_ALERTS,
    FRAUD_ACCOUNT_STATE,
)
