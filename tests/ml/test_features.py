import json
import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from flows import samples
from flows.catalog import FEATURE_METADATA, ORDER_FEATURES, ORDERS
from flows.core import lake
from flows.ml.features.flow import (
    feature_engineering_pipeline,
    feature_metadata_rows,
    feature_profile,
)
from flows.ml.features.transforms import (
    FEATURE_FAMILIES,
    LARGE_ORDER_AMOUNT,
    as_of_before,
    features_of_month,
    month_starts,
    order_features,
    temporal_features,
)

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)  # a Monday


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def frame(module, rows, seed=1):
    return pl.from_arrow(getattr(samples, module)(rows, seed=seed))


def orders_frame(rows):
    """Orders from (order_id, customer_id, product_id, quantity, amount, hours after T0)."""
    return pl.DataFrame(
        {
            "order_id": [r[0] for r in rows],
            "customer_id": [r[1] for r in rows],
            "product_id": [r[2] for r in rows],
            "quantity": [r[3] for r in rows],
            "amount": [r[4] for r in rows],
            "status": ["placed"] * len(rows),
            "order_date": [at(r[5]).date() for r in rows],
            "updated_at": [at(r[5]) for r in rows],
        }
    )


CUSTOMERS = pl.DataFrame(
    {"customer_id": [1, 2], "name": ["a", "b"], "email": ["a@x.io", "b@x.io"], "country": ["DE", "FR"],
     "segment": ["consumer", "enterprise"], "signup_date": [T0.date()] * 2, "updated_at": [at(-100), at(-100)]}
)  # fmt: skip
PRODUCTS = pl.DataFrame(
    {"product_id": [10, 20], "name": ["Product 10", "Product 20"], "category": ["books", "toys"],
     "price": [10.0, 40.0], "updated_at": [at(-100), at(5)]}
)  # fmt: skip
EVENTS = pl.DataFrame(
    {"event_id": [1, 2], "customer_id": [1, 1], "product_id": [10, 10], "event_type": ["search", "add_to_cart"],
     "value": [0.0, 1.0], "event_time": [at(-1), at(0)]}
)  # fmt: skip


def features_of(orders):
    return order_features(orders, CUSTOMERS, PRODUCTS, EVENTS).sort("order_id")


@pytest.mark.parametrize(
    ("hour", "weekday", "hour_sin", "hour_cos", "weekend"),
    [
        (0, 0, 0.0, 1.0, False),
        (6, 1, 1.0, 0.0, False),
        (18, 5, -1.0, 0.0, True),
    ],
)
def test_temporal_features_encode_hour_on_a_circle(hour, weekday, hour_sin, hour_cos, weekend):
    moment = datetime(2024, 3, 4, hour, tzinfo=UTC) + timedelta(days=weekday)
    row = temporal_features(pl.DataFrame({"t": [moment]}), "t").row(0, named=True)
    assert row["hour_sin"] == pytest.approx(hour_sin, abs=1e-9)
    assert row["hour_cos"] == pytest.approx(hour_cos, abs=1e-9)
    assert row["weekday_sin"] == pytest.approx(math.sin(2 * math.pi * weekday / 7))
    assert row["is_weekend"] is weekend


def test_rolling_aggregates_count_only_earlier_orders_of_the_same_customer():
    orders = orders_frame(
        [
            (1, 1, 10, 1, 10.0, 0),
            (2, 1, 10, 2, 30.0, 24),
            (3, 1, 10, 3, 50.0, 24),  # same instant as order 2: neither sees the other
            (4, 2, 10, 1, 99.0, 25),  # another customer
            (5, 1, 10, 4, 70.0, 24 * 9),  # 9 days on: orders 1-3 are out of the 7-day window
        ]
    )
    rows = {r["order_id"]: r for r in features_of(orders).to_dicts()}
    assert [rows[i]["customer_orders_7d"] for i in (1, 2, 3, 4, 5)] == [0, 1, 1, 0, 0]
    assert [rows[i]["customer_orders_30d"] for i in (1, 2, 3, 4, 5)] == [0, 1, 1, 0, 3]
    assert rows[2]["customer_amount_sum_7d"] == 10.0
    assert rows[5]["customer_amount_mean_30d"] == pytest.approx(30.0)
    assert rows[5]["quantity_to_customer_mean_ratio"] == pytest.approx(4 / 2)
    assert rows[1]["customer_days_since_previous_order"] is None
    assert rows[3]["customer_days_since_previous_order"] == pytest.approx(1.0)
    assert rows[5]["customer_days_since_previous_order"] == pytest.approx(8.0)
    assert [rows[i]["customer_category_orders_before"] for i in (1, 2, 5)] == [0, 1, 3]
    assert rows[4]["category_amount_mean_30d"] == pytest.approx(30.0)  # orders 1-3, any customer


def test_dimensions_and_events_are_joined_as_known_strictly_before_the_order():
    orders = orders_frame([(1, 1, 20, 1, 10.0, 0), (2, 1, 20, 1, 10.0, 6), (3, 1, 10, 1, 5.0, 0.5)])
    rows = {r["order_id"]: r for r in features_of(orders).to_dicts()}
    assert rows[1]["product_price"] is None  # product 20's only known row is from later
    assert rows[2]["product_price"] == 40.0
    assert rows[2]["product_text"] == "Product 20 toys"
    assert (
        rows[1]["last_event_type"] == "search"
    )  # the add_to_cart at the same instant is not before
    assert rows[1]["minutes_since_last_event"] == pytest.approx(60.0)
    assert rows[3]["last_event_type"] == "add_to_cart"
    assert rows[3]["segment"] == "consumer"


def test_label_marks_large_orders():
    orders = orders_frame([(1, 1, 10, 1, LARGE_ORDER_AMOUNT, 0), (2, 1, 10, 1, 99.99, 1)])
    assert features_of(orders)["is_large_order"].to_list() == [True, False]


def test_changing_a_future_order_leaves_every_earlier_feature_unchanged():
    orders = frame("orders", 3_000, seed=42)
    customers, products, events = (
        frame("customers", 300),
        frame("products", 50),
        frame("events", 3_000),
    )
    before = order_features(orders, customers, products, events)
    cutoff = orders["updated_at"].sort()[2_000]
    future = pl.col("updated_at") > cutoff
    tampered = orders.with_columns(
        pl.when(future).then(pl.col("amount") * 100).otherwise(pl.col("amount")).alias("amount"),
        pl.when(future)
        .then(pl.col("quantity") + 7)
        .otherwise(pl.col("quantity"))
        .alias("quantity"),
    )
    later = orders["updated_at"].max() + timedelta(hours=1)
    extra = orders.head(5).with_columns(pl.col("order_id") + 1_000_000, updated_at=pl.lit(later))
    after = order_features(pl.concat([tampered, extra]), customers, products, events)
    past = pl.col("event_time") <= cutoff
    assert after.filter(past).sort("order_id").equals(before.filter(past).sort("order_id"))
    assert not after.filter(~past).equals(before.filter(~past))  # the change did land


def test_as_of_join_refuses_exact_matches():
    left = pl.DataFrame({"k": [1, 1], "event_time": [at(0), at(1)]})
    right = pl.DataFrame({"k": [1], "seen": [at(1)], "v": ["x"]})
    joined = as_of_before(left, right, right_time="seen", by="k")
    assert joined["v"].to_list() == [None, None]


def test_feature_metadata_names_every_feature_with_family_and_source_versions():
    features = features_of(orders_frame([(1, 1, 10, 1, 10.0, 0)]))
    built = datetime(2024, 1, 1, tzinfo=UTC)
    rows = feature_metadata_rows(
        features, feature_table="gold/f", feature_table_version=3,
        source_versions={"silver/orders": 7}, built_at=built,
    )  # fmt: skip
    assert rows["feature"].to_list() == list(FEATURE_FAMILIES)
    assert set(rows["family"]) >= {"temporal", "rolling", "categorical_aggregate", "ratio", "text"}
    assert json.loads(rows["source_versions"][0]) == {"silver/orders": 7}
    profile = {p["feature"]: p for p in feature_profile(features)}
    assert profile["product_price"]["null_share"] == 0.0


def test_flow_seeds_sources_builds_features_and_records_lineage(any_lake, prefect_api):
    first = feature_engineering_pipeline(sample_rows=1_000, sample_data=True)
    assert sorted(first["source_versions"]) == [
        "silver/customers",
        "silver/events",
        "silver/orders",
        "silver/products",
    ]
    features = lake.read(ORDER_FEATURES)
    assert features.height == 1_000 == features["order_id"].n_unique()
    metadata = lake.read(FEATURE_METADATA)
    assert metadata.height == len(FEATURE_FAMILIES)
    assert json.loads(metadata["source_versions"][0])["silver/orders"] == lake.version(ORDERS)

    again = feature_engineering_pipeline(sample_rows=1_000, sample_data=True)
    assert again["source_versions"] == first["source_versions"]  # existing tables: no samples
    assert lake.read(ORDER_FEATURES).sort("order_id").equals(features.sort("order_id"))
    assert lake.read(FEATURE_METADATA).height == len(FEATURE_FAMILIES)  # merged, not appended


def test_month_units_together_equal_the_features_built_over_everything():
    sources = [pl.from_arrow(samples.orders(600, customer_count=40, product_count=20)),
               pl.from_arrow(samples.customers(40)), pl.from_arrow(samples.products(20)),
               pl.from_arrow(samples.events(600, customer_count=40, product_count=20))]  # fmt: skip
    months = month_starts(sources[0]["updated_at"])
    assert [month.month for month in months] == [1, 2, 3]
    parts = [features_of_month(*sources, month=month) for month in months]
    assert all(part.height for part in parts)
    together = pl.concat(parts).sort("event_time", "order_id")
    assert together.equals(order_features(*sources))
