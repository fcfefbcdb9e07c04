"""Point-in-time correct order features: each row sees only data from strictly before its order.

Pure functions over Polars frames (no I/O), so the flow, the tests and the benchmark share them.
Every window is closed on the left (`[t - w, t)`) and every as-of join refuses exact matches, so a
row never sees itself, an order placed at the same instant, or anything later.
"""

from __future__ import annotations

import math
from datetime import datetime

import polars as pl

LARGE_ORDER_AMOUNT = 100.0
"""The label: an order worth at least this much is a large order."""
_ALL_HISTORY = "36500d"

FEATURE_FAMILIES: dict[str, tuple[str, str]] = {
    "hour_sin": ("temporal", "hour of day, cyclical (sine)"),
    "hour_cos": ("temporal", "hour of day, cyclical (cosine)"),
    "weekday_sin": ("temporal", "day of week, cyclical (sine)"),
    "weekday_cos": ("temporal", "day of week, cyclical (cosine)"),
    "is_weekend": ("temporal", "order placed on Saturday or Sunday"),
    "quantity": ("order", "units ordered"),
    "product_price": ("dimension", "catalogue price, as known before the order"),
    "category": ("dimension", "product category, as known before the order"),
    "segment": ("dimension", "customer segment, as known before the order"),
    "country": ("dimension", "customer country, as known before the order"),
    "customer_orders_7d": ("rolling", "the customer's orders in the 7 days before"),
    "customer_orders_30d": ("rolling", "the customer's orders in the 30 days before"),
    "customer_amount_sum_7d": ("rolling", "the customer's spend in the 7 days before"),
    "customer_amount_mean_30d": ("rolling", "the customer's mean order in the 30 days before"),
    "customer_days_since_previous_order": ("rolling", "days since the customer's last order"),
    "customer_category_orders_before": (
        "categorical_aggregate",
        "the customer's earlier orders in this category",
    ),
    "category_amount_mean_30d": (
        "categorical_aggregate",
        "mean order in this category over the 30 days before (all customers)",
    ),
    "quantity_to_customer_mean_ratio": (
        "ratio",
        "quantity / the customer's mean quantity over the 30 days before",
    ),
    "price_to_category_mean_ratio": (
        "ratio",
        "product price / mean order in its category over the 30 days before",
    ),
    "last_event_type": ("clickstream", "the customer's last clickstream event before the order"),
    "minutes_since_last_event": ("clickstream", "minutes since that event"),
    "product_text": ("text", "product name and category, TF-IDF encoded by the model"),
}


def cyclical(value: pl.Expr, period: float, name: str) -> list[pl.Expr]:
    """Sine and cosine of `value` on a circle of `period`, so 23h sits next to 0h."""
    angle = value.cast(pl.Float64) * (2 * math.pi / period)
    return [angle.sin().alias(f"{name}_sin"), angle.cos().alias(f"{name}_cos")]


def temporal_features(frame: pl.DataFrame, time_column: str) -> pl.DataFrame:
    """Hour of day and day of week, cyclically encoded, and a weekend flag."""
    time = pl.col(time_column)
    return frame.with_columns(
        *cyclical(time.dt.hour() + time.dt.minute() / 60, 24, "hour"),
        *cyclical(time.dt.weekday() - 1, 7, "weekday"),
        (time.dt.weekday() >= 6).alias("is_weekend"),
    )


def _before(value: pl.Expr, how: str, window: str, by: str | list[str]) -> pl.Expr:
    """An aggregate of `value` over `[t - window, t)` within each `by` group."""
    rolling = getattr(value, f"rolling_{how}_by")
    return rolling("event_time", window_size=window, closed="left").over(by)  # type: ignore[no-any-return]


def _count_before(window: str, by: str | list[str]) -> pl.Expr:
    return _before(pl.col("order_id").is_not_null().cast(pl.Int64), "sum", window, by)


def rolling_features(orders: pl.DataFrame) -> pl.DataFrame:
    """Per-customer and per-category aggregates over windows that end just before each order."""
    return orders.with_columns(
        _count_before("7d", "customer_id").alias("customer_orders_7d"),
        _count_before("30d", "customer_id").alias("customer_orders_30d"),
        _before(pl.col("amount"), "sum", "7d", "customer_id").alias("customer_amount_sum_7d"),
        _before(pl.col("amount"), "mean", "30d", "customer_id").alias("customer_amount_mean_30d"),
        _before(pl.col("quantity").cast(pl.Float64), "mean", "30d", "customer_id").alias(
            "_customer_quantity_mean_30d"
        ),
        _count_before(_ALL_HISTORY, ["customer_id", "category"]).alias(
            "customer_category_orders_before"
        ),
        _before(pl.col("amount"), "mean", "30d", "category").alias("category_amount_mean_30d"),
    )


def as_of_before(
    left: pl.DataFrame, right: pl.DataFrame, *, right_time: str, by: str
) -> pl.DataFrame:
    """For each left row, the newest right row of the same `by` strictly before `event_time`."""
    return left.sort("event_time").join_asof(
        right.sort(right_time),
        left_on="event_time",
        right_on=right_time,
        by=by,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )


def order_features(
    orders: pl.DataFrame,
    customers: pl.DataFrame,
    products: pl.DataFrame,
    events: pl.DataFrame,
) -> pl.DataFrame:
    """The ORDER_FEATURES rows: one per order, each feature from data before the order only.

    Dimensions (customers, products) are joined as of their `updated_at` strictly before the
    order: a customer whose known row is newer than the order gets nulls rather than the future.
    """
    base = orders.select(
        "order_id",
        "customer_id",
        "product_id",
        "quantity",
        "amount",
        pl.col("updated_at").alias("event_time"),
    )
    previous = orders.select("customer_id", pl.col("updated_at").alias("_previous_order_at"))
    clicks = events.select(
        "customer_id",
        pl.col("event_type").alias("last_event_type"),
        pl.col("event_time").alias("_last_event_at"),
    )
    joined = as_of_before(
        base,
        products.select(
            "product_id",
            pl.col("price").alias("product_price"),
            "category",
            pl.col("name").alias("_product_name"),
            pl.col("updated_at").alias("_product_at"),
        ),
        right_time="_product_at",
        by="product_id",
    )
    joined = as_of_before(
        joined,
        customers.select("customer_id", "segment", "country", pl.col("updated_at").alias("_c_at")),
        right_time="_c_at",
        by="customer_id",
    )
    joined = as_of_before(joined, previous, right_time="_previous_order_at", by="customer_id")
    joined = as_of_before(joined, clicks, right_time="_last_event_at", by="customer_id")
    featured = rolling_features(temporal_features(joined, "event_time"))
    days = 86_400_000_000.0
    return (
        featured.with_columns(
            (
                (pl.col("event_time") - pl.col("_previous_order_at")).dt.total_microseconds() / days
            ).alias("customer_days_since_previous_order"),
            (pl.col("quantity") / pl.col("_customer_quantity_mean_30d")).alias(
                "quantity_to_customer_mean_ratio"
            ),
            (pl.col("product_price") / pl.col("category_amount_mean_30d")).alias(
                "price_to_category_mean_ratio"
            ),
            (
                (pl.col("event_time") - pl.col("_last_event_at")).dt.total_microseconds()
                / 60_000_000.0
            ).alias("minutes_since_last_event"),
            pl.concat_str([pl.col("_product_name"), pl.col("category")], separator=" ").alias(
                "product_text"
            ),
            (pl.col("amount") >= LARGE_ORDER_AMOUNT).alias("is_large_order"),
        )
        .sort("event_time", "order_id")
        .select(
            "order_id",
            "customer_id",
            "event_time",
            *FEATURE_FAMILIES,
            "is_large_order",
        )
    )


def month_starts(times: pl.Series) -> list[datetime]:
    """The first instant of each calendar month in `times` (UTC), in order: feature units."""
    months = times.dt.truncate("1mo").unique().sort().drop_nulls()
    return months.to_list()


def features_of_month(
    orders: pl.DataFrame,
    customers: pl.DataFrame,
    products: pl.DataFrame,
    events: pl.DataFrame,
    *,
    month: datetime,
) -> pl.DataFrame:
    """The ORDER_FEATURES rows of the orders placed in `month`, equal to those rows of
    `order_features` over everything: every feature looks only backwards, so data from the
    month's end on is dropped before building and the units stay independent."""
    end = (pl.lit(month).dt.offset_by("1mo")).alias("end")
    before_end = orders.filter(pl.col("updated_at") < end)
    features = order_features(
        before_end, customers, products, events.filter(pl.col("event_time") < end)
    )
    return features.filter(pl.col("event_time") >= month)
