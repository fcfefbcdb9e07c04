"""Windowed metrics: exact per window, and equal to a brute-force recomputation across
micro-batches, late events, a re-run and a crash between the outputs and the offset."""

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows import samples
from flows.catalog import (
    EVENT_WINDOW_METRICS,
    EVENT_WINDOW_TOP_PRODUCTS,
    EVENTS,
    LATE_EVENTS,
    ORDERS,
    STREAM_OFFSETS,
)
from flows.core import lake
from flows.monitoring.realtime.flow import realtime_analytics
from flows.monitoring.realtime.offsets import consumer_name
from flows.monitoring.realtime.transforms import (
    advanced_watermark,
    affected_windows,
    in_windows,
    split_late,
    top_products,
    window_metrics,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
UTC_US = pl.Datetime("us", "UTC")


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def events(minutes, values=None, first_id=1, types=None, products=None):
    n = len(minutes)
    return pl.DataFrame(
        {
            "event_id": list(range(first_id, first_id + n)),
            "customer_id": [1] * n,
            "product_id": products or [1] * n,
            "event_type": types or ["purchase"] * n,
            "value": values or [1.0] * n,
            "event_time": [at(m) for m in minutes],
        },
        schema_overrides={"event_time": UTC_US, "value": pl.Float64, "product_id": pl.Int64},
    )


def test_window_metrics_are_exact_per_window_and_type():
    values = [float(v) for v in range(1, 21)]
    types = ["purchase"] * 20 + ["search", "purchase"]
    frame = events([0.5] * 20 + [4.9, 5.0], [*values, 100.0, 7.0], types=types)

    metrics = window_metrics(frame, window_minutes=5)

    rows = {(r["window_start"], r["event_type"]): r for r in metrics.to_dicts()}
    first = rows[(T0, "purchase")]
    assert (first["events"], first["value_sum"], first["value_avg"]) == (20, 210.0, 10.5)
    assert first["value_p95"] == pytest.approx(np.percentile(values, 95))
    assert first["value_p99"] == pytest.approx(np.percentile(values, 99))
    assert first["window_end"] == at(5)
    assert rows[(T0, "search")]["events"] == 1
    assert rows[(at(5), "purchase")]["value_sum"] == 7.0  # 12:05 starts the next window
    assert set(metrics["window_minutes"]) == {5}


def test_top_products_rank_by_events_then_value_then_id():
    frame = events([1, 1, 1, 2, 2, 3, 6], values=[1, 1, 1, 5, 5, 2, 1],
                   products=[7, 7, 7, 3, 3, 9, 4])  # fmt: skip
    frame = pl.concat([frame, events([3], values=[10.0], first_id=99, products=[None])])

    top = top_products(frame, window_minutes=5, n=2)

    assert top.select("window_start", "rank", "product_id", "events").rows() == [
        (T0, 1, 7, 3),
        (T0, 2, 3, 2),
        (at(5), 1, 4, 1),
    ]


@pytest.mark.parametrize(
    ("previous", "latest", "expected"),
    [
        (None, [at(30), at(10)], at(15)),
        (at(20), [at(30)], at(20)),  # never moves back
        (at(20), [at(50)], at(35)),
        (at(20), [], at(20)),
        (None, [], None),
    ],
)
def test_the_watermark_trails_the_newest_event_and_never_moves_back(previous, latest, expected):
    times = pl.Series(latest, dtype=UTC_US)
    assert advanced_watermark(previous, times, timedelta(minutes=15)) == expected


@pytest.mark.parametrize(
    ("minute", "watermark", "late"),
    [
        (4.9, at(5), True),  # its window [0, 5) ended at the watermark: closed
        (5.0, at(5), False),
        (4.9, at(4), False),  # window still open: a late event updates it
        (0.0, None, False),  # no watermark before the first batch
    ],
)
def test_events_for_closed_windows_are_too_late(minute, watermark, late):
    on_time, too_late = split_late(events([minute]), window_minutes=5, watermark=watermark)
    assert (too_late.height, on_time.height) == ((1, 0) if late else (0, 1))


def test_affected_windows_and_their_events():
    frame = events([0, 1, 7, 21])
    windows = affected_windows(frame.slice(0, 3), window_minutes=5)
    assert windows == [T0, at(5)]
    assert frame.filter(in_windows(windows, 5))["event_id"].to_list() == [1, 2, 3]
    assert frame.filter(in_windows([], 5)).is_empty()


def test_appended_since_reads_only_the_files_of_later_commits(local_lake):
    orders = samples.orders(300)
    lake.append(ORDERS, orders.slice(0, 100))  # version 0
    lake.append(ORDERS, orders.slice(100, 100))  # version 1
    lake.append(ORDERS, orders.slice(200, 100))  # version 2

    def ids(frame):
        return sorted(frame["order_id"].to_list())

    assert ids(lake.appended_since(ORDERS, -1)) == list(range(1, 301))
    assert ids(lake.appended_since(ORDERS, 0)) == list(range(101, 301))
    middle = lake.appended_since(ORDERS, 0, until=1)
    assert ids(middle) == list(range(101, 201))
    # Partition values live in the folder names, not the files: they are read back as well.
    dates = middle.sort("order_id")["order_date"].to_list()
    assert dates == orders.slice(100, 100)["order_date"].to_pylist()
    assert lake.appended_since(ORDERS, 2).is_empty()


def brute_force(all_events, too_late_ids):
    kept = all_events.filter(~pl.col("event_id").is_in(too_late_ids))
    return window_metrics(kept, window_minutes=5), top_products(kept, window_minutes=5, n=3)


def stored(table, columns, key):
    return lake.read(table, columns=columns).sort(key)


def assert_matches_brute_force(all_events, too_late_ids):
    metrics, top = brute_force(all_events, too_late_ids)
    columns = [c for c in EVENT_WINDOW_METRICS.schema.names if c != "computed_at"]
    key = ["window_start", "event_type"]
    assert_frame_equal(
        stored(EVENT_WINDOW_METRICS, columns, key), metrics.select(columns).sort(key)
    )
    top_columns = ["window_start", "rank", "product_id", "events", "value_sum"]
    assert_frame_equal(
        stored(EVENT_WINDOW_TOP_PRODUCTS, top_columns, ["window_start", "rank"]),
        top.select(top_columns).sort("window_start", "rank"),
    )
    late = lake.read(LATE_EVENTS)["event_id"].sort().to_list() if lake.exists(LATE_EVENTS) else []
    assert late == sorted(too_late_ids)


def random_events(rng, start_minute, end_minute, count, first_id):
    minutes = np.sort(rng.uniform(start_minute, end_minute, count)).tolist()
    return events(
        minutes,
        values=np.round(rng.exponential(20.0, count), 2).tolist(),
        first_id=first_id,
        types=rng.choice(["purchase", "search", "page_view"], count).tolist(),
        products=rng.integers(1, 8, count).tolist(),
    )


@pytest.mark.slow
def test_windowed_metrics_equal_a_brute_force_recomputation(any_lake, prefect_api):
    rng = np.random.default_rng(1)
    run = realtime_analytics
    parameters = {"window_minutes": 5, "allowed_lateness_minutes": 15, "top_n": 3}
    batches = [
        random_events(rng, 0, 30, 300, 1),  # watermark after: 30 - 15 = minute 15
        # minute 17-22 arrives late but within the lateness: its windows are updated
        pl.concat([random_events(rng, 30, 60, 300, 1_000), random_events(rng, 17, 22, 20, 2_000)]),
        # watermark is now 45: minute 3 is too late, minute 48 is late but its window is open
        pl.concat(
            [
                random_events(rng, 60, 70, 100, 3_000),
                events([3.0], first_id=4_000),
                events([48.0], first_id=4_001, values=[500.0]),
            ]
        ),
    ]
    seen = []
    for number, batch in enumerate(batches, start=1):
        lake.append(EVENTS, batch)
        seen.append(batch)
        summary = run(**parameters)
        assert summary["new_events"] == batch.height
        assert_matches_brute_force(pl.concat(seen), [4_000] if number == 3 else [])
    lateness = timedelta(minutes=15)
    [offset] = lake.read(STREAM_OFFSETS).to_dicts()
    assert offset["version"] == 2
    assert offset["watermark"] == pl.concat(seen)["event_time"].max() - lateness

    assert run(**parameters)["new_events"] == 0  # a re-run finds nothing new
    assert_matches_brute_force(pl.concat(seen), [4_000])

    # A crash after the outputs were committed but before the offset moved: roll the offset
    # back to before batch 3 and re-run; the same windows are recomputed, nothing is doubled.
    lake.merge(
        STREAM_OFFSETS,
        pl.DataFrame(
            {
                "consumer": [consumer_name(5)],
                "source": [EVENTS.path],
                "version": [1],
                "watermark": [pl.concat(seen[:2])["event_time"].max() - lateness],
                "updated_at": [datetime.now(UTC)],
            },
            schema_overrides={"watermark": UTC_US, "updated_at": UTC_US},
        ),
    )
    assert run(**parameters)["new_events"] == batches[2].height
    assert_matches_brute_force(pl.concat(seen), [4_000])
    assert lake.read(LATE_EVENTS).height == 1


def test_compacting_the_events_table_between_batches_changes_nothing(local_lake, prefect_api):
    rng = np.random.default_rng(2)
    first = random_events(rng, 0, 60, 200, 1)
    lake.append(EVENTS, first.slice(0, 100))
    lake.append(EVENTS, first.slice(100, 100))
    realtime_analytics(top_n=3)
    assert lake.compact(EVENTS).files_removed == 2  # rewrites every row already processed

    second = random_events(rng, 60, 70, 50, 1_000)
    lake.append(EVENTS, second)
    summary = realtime_analytics(top_n=3)

    assert summary["new_events"] == first.height + second.height  # the rewritten file is reread
    assert summary["late_events"] == 0  # ...but its old rows are not mistaken for late arrivals
    assert_matches_brute_force(pl.concat([first, second]), [])
