from datetime import UTC, date, datetime

import polars as pl
import pytest

from flows import samples
from flows.catalog import CUSTOMERS, ENRICHED_EVENTS, EVENTS, PRODUCTS
from flows.core import lake
from flows.etl.stream_enrichment import (
    day_window,
    enriched_events,
    events_since,
    stream_enrichment,
    summed_unmatched,
    unmatched_keys,
)

T0 = datetime(2024, 1, 1, 10, tzinfo=UTC)


def frames(events, products, customers):
    return (
        pl.LazyFrame(
            events,
            schema_overrides={"event_time": pl.Datetime("us", "UTC"), "product_id": pl.Int64},
        ),
        pl.LazyFrame(products),
        pl.LazyFrame(customers),
    )


def event(event_id, customer_id, product_id):
    return {"event_id": event_id, "event_time": T0, "event_type": "page_view", "value": 1.0,
            "customer_id": customer_id, "product_id": product_id}  # fmt: skip


PRODUCTS_ROWS = [{"product_id": 1, "name": "P1", "category": "books", "price": 5.0}]
CUSTOMERS_ROWS = [{"customer_id": 10, "country": "DE", "segment": "consumer"}]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            event(1, 10, 1),
            {
                "product_name": "P1",
                "country": "DE",
                "product_matched": True,
                "customer_matched": True,
            },
        ),
        (
            event(2, 10, 99),
            {
                "product_name": None,
                "country": "DE",
                "product_matched": False,
                "customer_matched": True,
            },
        ),
        (
            event(3, 77, 1),
            {
                "product_name": "P1",
                "country": None,
                "product_matched": True,
                "customer_matched": False,
            },
        ),
        (
            event(4, 10, None),
            {
                "product_name": None,
                "country": "DE",
                "product_matched": False,
                "customer_matched": True,
            },
        ),
    ],
)
def test_enriched_events_keeps_every_event_and_flags_unmatched_keys(row, expected):
    result = enriched_events(*frames([row], PRODUCTS_ROWS, CUSTOMERS_ROWS)).collect()
    assert result.height == 1
    got = result.row(0, named=True)
    assert {k: got[k] for k in expected} == expected
    assert got["event_date"] == date(2024, 1, 1)
    assert ENRICHED_EVENTS.conform(result.to_arrow()).num_rows == 1


def test_unmatched_keys_counts_events_per_missing_key_and_ignores_null_keys():
    rows = [
        event(1, 10, 1),
        event(2, 10, 99),
        event(3, 77, 99),
        event(4, 78, 1),
        event(5, 10, None),
    ]
    enriched = enriched_events(*frames(rows, PRODUCTS_ROWS, CUSTOMERS_ROWS))
    assert unmatched_keys(enriched).collect().to_dicts() == [
        {"reference": "products", "key": 99, "events": 2},
        {"reference": "customers", "key": 77, "events": 1},
        {"reference": "customers", "key": 78, "events": 1},
    ]


def test_events_since_selects_whole_utc_days():
    assert events_since(None) is None
    frame = pl.DataFrame(
        {"event_time": [datetime(2024, 1, 1, 23, 59, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)]}
    )
    assert frame.filter(events_since(date(2024, 1, 2))).height == 1


def test_filter_and_projection_reach_the_delta_scan(local_lake):
    lake.merge(EVENTS, samples.events(50))
    lake.merge(PRODUCTS, samples.products(10))
    lake.merge(CUSTOMERS, samples.customers(10))
    plan = enriched_events(
        lake.scan(EVENTS).filter(events_since(date(2024, 1, 3))),
        lake.scan(PRODUCTS).select("product_id", "name", "category", "price"),
        lake.scan(CUSTOMERS).select("customer_id", "country", "segment"),
    ).explain()
    assert 'SELECTION: col("event_time") >= 2024-01-03 00:00:00 UTC' in plan
    assert "PROJECT 6/6 COLUMNS" in plan  # events: only the six it uses (all of them)
    assert "PROJECT 4/5 COLUMNS" in plan  # products: not updated_at
    assert "PROJECT 3/7 COLUMNS" in plan  # customers: not name, email, signup, updated_at


def seed(events_rows=300, day_shift=0):
    lake.merge(CUSTOMERS, samples.customers(50))
    lake.merge(PRODUCTS, samples.products(10))
    events = pl.from_arrow(samples.events(events_rows, customer_count=53, product_count=12))
    lake.merge(EVENTS, events.with_columns(pl.col("event_time") + pl.duration(days=day_shift)))


def test_flow_enriches_every_event_reports_unknown_keys_and_rebuilds_only_recent_days(
    any_lake, prefect_api
):
    seed()
    first = stream_enrichment()
    gold = lake.read(ENRICHED_EVENTS)
    events = lake.read(EVENTS)
    assert first["events"] == gold.height == events.height == 300
    unknown_products = events.filter(pl.col("product_id") > 10).height
    unknown_customers = events.filter(pl.col("customer_id") > 50).height
    assert unknown_products > 0
    assert unknown_customers > 0
    assert first["unmatched_product_events"] == unknown_products
    assert first["unmatched_customer_events"] == unknown_customers
    assert gold.filter(~pl.col("product_matched")).height == unknown_products

    again = stream_enrichment()
    assert again["days"] == 1  # only the last day is rebuilt
    assert lake.read(ENRICHED_EVENTS).height == 300

    more = pl.from_arrow(samples.events(100, seed=9, customer_count=50, product_count=10))
    later_events = more.with_columns(
        pl.col("event_id") + 1_000, pl.col("event_time") + pl.duration(days=7)
    )
    lake.merge(EVENTS, later_events)
    later = stream_enrichment()
    assert later["events"] >= 100
    final = lake.read(ENRICHED_EVENTS)
    assert final.height == 400
    assert final["event_id"].is_duplicated().sum() == 0


def test_zero_config_run_seeds_samples_and_enriches_them(local_lake, prefect_api):
    summary = stream_enrichment(sample_rows=500)
    assert summary["events"] == 500
    assert summary["unmatched_keys"] == 0


def test_summed_unmatched_adds_up_the_days_and_keeps_the_order():
    day = pl.DataFrame({"reference": ["products", "customers"], "key": [99, 77], "events": [1, 2]})
    later = pl.DataFrame({"reference": ["products"], "key": [99], "events": [2]})
    assert summed_unmatched([day, later]).to_dicts() == [
        {"reference": "products", "key": 99, "events": 3},
        {"reference": "customers", "key": 77, "events": 2},
    ]
    assert summed_unmatched([]).columns == ["reference", "key", "events"]


def test_day_window_holds_one_whole_utc_day():
    times = [datetime(2024, 1, 1, 23, 59, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC),
             datetime(2024, 1, 2, 23, 59, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)]  # fmt: skip
    kept = pl.DataFrame({"event_time": times}).filter(day_window(date(2024, 1, 2)))
    assert kept["event_time"].to_list() == times[1:3]
