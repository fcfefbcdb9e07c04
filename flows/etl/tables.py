"""The tables the etl flows own: the shop's entities fed from raw deliveries, ingest state,
enrichment, batch scoring, erasures and the landing pipeline's manifest and gold tables.
"""

from __future__ import annotations

import pyarrow as pa

from flows.core.checks import Contains, MeanBetween, MedianBetween, Unique, between, matches, one_of
from flows.core.contracts import UTC_MICROS, Table, required

SEGMENTS = ("consumer", "small_business", "enterprise")
CATEGORIES = ("electronics", "books", "home", "garden", "toys", "sports", "beauty", "grocery")
ORDER_STATUSES = ("placed", "shipped", "delivered", "cancelled")
EVENT_TYPES = ("page_view", "add_to_cart", "checkout", "purchase", "search")
MERCHANT_CATEGORIES = ("grocery", "travel", "electronics", "restaurants", "fuel", "online")
ERASURE_PLACES = ("table", "landing", "document", "versions", "verification")
LANDING_FILE_STATUSES = ("bronze", "done", "empty", "failed")

CUSTOMERS = Table(
    "customers",
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
    checks=(
        matches("email", r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        matches("country", r"^[A-Z]{2}$"),
        one_of("segment", SEGMENTS),
    ),
    description="One row per customer; a later update wins.",
    freshness_hours=48,
    ingested=True,
    monitor_checks=(Unique("email"),),
    personal=("name", "email"),
    identifying=("email",),
)


PRODUCTS = Table(
    "products",
    layer="silver",
    schema=pa.schema(
        [
            required("product_id", pa.int64()),
            ("name", pa.string()),
            ("category", pa.string()),
            ("price", pa.float64()),
            required("updated_at", UTC_MICROS),
        ]
    ),
    key=("product_id",),
    newest_by="updated_at",
    checks=(one_of("category", CATEGORIES), between("price", 0, 100_000)),
    description="The product catalogue; a later update wins.",
    freshness_hours=48,
    ingested=True,
)


ORDERS = Table(
    "orders",
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
        one_of("status", ORDER_STATUSES),
    ),
    description="One row per order; a later update wins.",
    freshness_hours=24,
    ingested=True,
    monitor_checks=(MeanBetween("quantity", 1, 20),),
)


TRANSACTIONS = Table(
    "transactions",
    layer="silver",
    schema=pa.schema(
        [
            required("transaction_id", pa.int64()),
            required("account_id", pa.int64()),
            required("amount", pa.float64()),
            ("merchant_category", pa.string()),
            ("latitude", pa.float64()),
            ("longitude", pa.float64()),
            required("occurred_at", UTC_MICROS),
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
    ingested=True,
    monitor_checks=(MedianBetween("amount", 1, 10_000),),
)


EVENTS = Table(
    "events",
    layer="silver",
    schema=pa.schema(
        [
            required("event_id", pa.int64()),
            required("customer_id", pa.int64()),
            ("product_id", pa.int64()),
            required("event_type", pa.string()),
            ("value", pa.float64()),
            required("event_time", UTC_MICROS),
        ]
    ),
    key=("event_id",),
    checks=(one_of("event_type", EVENT_TYPES), between("value", 0, None)),
    description="Clickstream events from the shop.",
    freshness_hours=6,
    ingested=True,
    monitor_checks=(Contains("event_type", frozenset({"page_view"})),),
)


INGEST_STATE = Table(
    "ingest_state",
    layer="_ops",
    schema=pa.schema(
        [
            required("source", pa.string()),
            required("position", pa.string()),
            ("rows", pa.int64()),
            ("run_id", pa.string()),
            required("updated_at", UTC_MICROS),
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
            required("event_id", pa.int64()),
            required("event_date", pa.date32()),
            required("event_time", UTC_MICROS),
            required("event_type", pa.string()),
            ("value", pa.float64()),
            required("customer_id", pa.int64()),
            ("product_id", pa.int64()),
            ("product_name", pa.string()),
            ("category", pa.string()),
            ("price", pa.float64()),
            ("country", pa.string()),
            ("segment", pa.string()),
            required("product_matched", pa.bool_()),
            required("customer_matched", pa.bool_()),
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
            required("transaction_id", pa.int64()),
            required("account_id", pa.int64()),
            required("amount", pa.float64()),
            ("merchant_category", pa.string()),
            required("occurred_at", UTC_MICROS),
            required("occurred_date", pa.date32()),
            required("is_large", pa.bool_()),
            required("is_night", pa.bool_()),
            required("risk_score", pa.float64()),
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
            required("erasure_id", pa.string()),
            required("table", pa.string()),
            ("kind", pa.string()),
            required("subject_ref", pa.string()),
            ("requested_by", pa.string()),
            ("request_ref", pa.string()),
            required("rows_deleted", pa.int64()),
            required("files_removed", pa.int64()),
            ("table_version", pa.int64()),
            ("versions_deleted", pa.int64()),
            ("copies_until", UTC_MICROS),
            ("objects_checked", pa.int64()),
            ("occurrences_left", pa.int64()),
            ("verified", pa.bool_()),
            ("run_id", pa.string()),
            required("erased_at", UTC_MICROS),
        ]
    ),
    key=("erasure_id", "table"),
    checks=(one_of("kind", ERASURE_PLACES),),
    description="GDPR erasures: who asked, when, every place checked (tables, landing files,"
    " documents, object versions) with the counts removed, and the independent verification's"
    " result; the subject only as a fingerprint, never the erased data.",
    tags=("etl", "gdpr"),
)


LANDING_FILES = Table(
    "landing_files",
    layer="_ops",
    schema=pa.schema(
        [
            required("batch_id", pa.string()),
            required("source_file", pa.string()),
            required("source", pa.string()),
            ("size", pa.int64()),
            ("tag", pa.string()),
            required("status", pa.string()),
            ("rows", pa.int64()),
            ("quarantined", pa.int64()),
            ("new_columns", pa.string()),
            ("error", pa.string()),
            ("run_id", pa.string()),
            required("updated_at", UTC_MICROS),
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
            required("order_date", pa.date32()),
            required("category", pa.string()),
            required("orders", pa.int64()),
            required("units", pa.int64()),
            required("revenue", pa.float64()),
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
            required("customer_id", pa.int64()),
            required("orders", pa.int64()),
            required("revenue", pa.float64()),
            required("average_order_value", pa.float64()),
            required("first_order_date", pa.date32()),
            required("last_order_date", pa.date32()),
        ]
    ),
    key=("customer_id",),
    checks=(between("orders", 1, None), between("revenue", 0, None)),
    description="Orders and revenue per customer over all time (cancelled orders excluded);"
    " a run recomputes only the customers it touched.",
    freshness_hours=24,
    tags=("etl",),
)


TABLES: tuple[Table, ...] = (
    CUSTOMERS,
    PRODUCTS,
    ORDERS,
    TRANSACTIONS,
    EVENTS,
    INGEST_STATE,
    ENRICHED_EVENTS,
    SCORED_TRANSACTIONS,
    ERASURES,
    LANDING_FILES,
    DAILY_CATEGORY_REVENUE,
    CUSTOMER_LIFETIME_VALUE,
)
