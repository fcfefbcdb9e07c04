import json
from collections import Counter

import httpx
import polars as pl
import pytest

from flows import samples
from flows.catalog import INGEST_STATE, ORDERS
from flows.core import lake
from flows.core.errors import SourceError
from flows.core.http_pages import get_page, records_table
from flows.etl.api.flow import SAMPLE_SOURCE, sample_api_refusal
from flows.etl.api.pages import page_position, start_page
from flows.etl.api.sample_api import PagesHandler, serve
from flows.etl.api_ingest import api_ingest
from flows.etl.ingest import Position

BRONZE = ORDERS.source_bronze("api")
RECORDS = samples.order_records(250)  # 253 records: 3 malformed at the end


class FaultyPages(PagesHandler):
    """Pages that fail on purpose: per-page queues of faults, or every page from one on."""

    faults: dict[int, list[str]]
    broken_from: int | None = None
    requests: Counter

    def answer(self, page, per_page):
        self.requests[page] += 1
        fault = self.faults[page].pop(0) if self.faults.get(page) else None
        if self.broken_from is not None and page >= self.broken_from:
            fault = "500"
        if fault is None:
            super().answer(page, per_page)
        elif fault == "drop":
            self.close_connection = True  # no response at all: the client sees a dropped connection
        elif fault == "429":
            self.send_json(429, {"error": "slow down"}, {"Retry-After": "1"})
        elif fault == "html":
            body = b"<html>maintenance</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_json(int(fault), {"error": "on purpose"})


@pytest.fixture
def api():
    handler = type(
        "Pages", (FaultyPages,), {"records": list(RECORDS), "faults": {}, "requests": Counter()}
    )
    with serve(handler) as url:
        yield handler, url


@pytest.mark.parametrize(
    ("page", "rows", "before", "expected"),
    [
        (1, 50, None, Position("[1, 50]", 50)),
        (2, 50, Position("[1, 50]", 50), Position("[2, 50]", 100)),
        (3, 40, Position("[3, 10]", 110), Position("[3, 40]", 140)),  # the re-fetched page grew
    ],
)
def test_page_position_counts_a_refetched_page_once(page, rows, before, expected):
    assert page_position(page, rows, before) == expected


def test_start_page_is_the_last_landed_page():
    assert start_page(None) == 1
    assert start_page(Position("[7, 3]", 303)) == 7


def test_records_table_keeps_every_value_as_text():
    table = records_table([{"a": 1, "b": None}, {"a": "x", "c": {"k": [1]}}])
    assert table.to_pylist() == [
        {"a": "1", "b": None, "c": None},
        {"a": "x", "b": None, "c": '{"k": [1]}'},
    ]


def test_get_page_waits_what_retry_after_says_on_a_real_server(api):
    handler, url = api
    handler.faults = {1: ["429", "503", "drop"]}
    sleeps = []
    with httpx.Client(timeout=5) as client:
        records = get_page(
            client, url, {"page": 1, "per_page": 10}, base_seconds=0.25, sleep=sleeps.append
        )
    assert len(records) == 10
    assert sleeps == [1.0, 0.5, 1.0]  # Retry-After, then 0.25 * 2**1, 0.25 * 2**2
    assert handler.requests[1] == 4


def test_a_page_that_is_not_json_is_a_clear_error(api):
    handler, url = api
    handler.faults = {1: ["html"]}
    with httpx.Client(timeout=5) as client, pytest.raises(SourceError, match="did not answer JSON"):
        get_page(client, url, {"page": 1, "per_page": 10}, sleep=lambda _: None)


def lake_order_ids():
    bronze = lake.read(BRONZE)
    assert bronze["order_id"].drop_nulls().is_duplicated().sum() == 0
    quarantined = lake.read(ORDERS.quarantine).height if lake.exists(ORDERS.quarantine) else 0
    return bronze.height, lake.read(ORDERS).height, quarantined


def test_flow_survives_errors_rate_limits_and_drops_and_a_rerun_adds_nothing(
    any_lake, prefect_api, api
):
    handler, url = api
    handler.faults = {1: ["503", "502"], 2: ["429"], 3: ["drop"]}
    summary = api_ingest(url=url, per_page=100, backoff_seconds=0.01)
    assert (summary["pages"], summary["rows"], summary["quarantined"]) == (3, 253, 3)
    assert lake_order_ids() == (253, 250, 3)
    assert dict(handler.requests) == {1: 3, 2: 2, 3: 2}
    assert set(lake.read(ORDERS.quarantine)["_reason"]) == {
        "amount: not a valid Float64",
        "order_id: is null",
        "amount: below 0",
    }

    again = api_ingest(url=url, per_page=100, backoff_seconds=0.01)
    assert (again["first_page"], again["pages"], again["rows_from_source"]) == (3, 1, 253)
    assert dict(handler.requests) == {1: 3, 2: 2, 3: 3}
    assert lake_order_ids() == (253, 250, 3)


def test_a_crashed_run_resumes_from_its_last_page(local_lake, prefect_api, api):
    handler, url = api
    handler.broken_from = 3
    with pytest.raises(SourceError, match=r"still failing after 3 attempts \(HTTP 500\)"):
        api_ingest(url=url, per_page=50, attempts=3, backoff_seconds=0.01)
    assert lake_order_ids() == (100, 100, 0)
    assert json.loads(lake.read(INGEST_STATE)["position"][0]) == [2, 50]

    handler.broken_from = None
    resumed = api_ingest(url=url, per_page=50, backoff_seconds=0.01)
    assert (resumed["first_page"], resumed["pages"]) == (2, 5)
    assert handler.requests[1] == 1
    assert lake_order_ids() == (253, 250, 3)
    assert lake.read(INGEST_STATE)["rows"].to_list() == [253]


def test_new_records_of_an_append_only_api_are_picked_up(local_lake, prefect_api, api):
    handler, url = api
    handler.records = list(RECORDS[:120])
    api_ingest(url=url, per_page=100, backoff_seconds=0.01)
    handler.records = list(RECORDS)
    later = api_ingest(url=url, per_page=100, backoff_seconds=0.01)
    assert (later["first_page"], later["rows_from_source"]) == (2, 253)
    assert lake_order_ids() == (253, 250, 3)

    refreshed = api_ingest(url=url, per_page=100, backoff_seconds=0.01, full_refresh=True)
    assert refreshed["pages"] == 3
    assert lake_order_ids() == (253, 250, 3)


def test_zero_config_run_serves_and_ingests_sample_orders(local_lake, prefect_api):
    summary = api_ingest(sample_rows=150, per_page=100)
    assert (summary["source"], summary["rows"], summary["quarantined"]) == (SAMPLE_SOURCE, 153, 3)
    assert lake.read(BRONZE).filter(pl.col("_source") == SAMPLE_SOURCE).height == 153


@pytest.mark.parametrize(
    ("allowed", "target_exists", "fed_before", "refused"),
    [
        (True, False, False, None),  # the zero-config run: a target of its own
        (True, True, True, None),  # a re-run: the target holds the sample API's rows
        (True, True, False, "the target table exists and holds data from elsewhere"),
        (False, False, False, "sample data is off here"),
        (False, True, True, "sample data is off here"),
    ],
)
def test_the_sample_api_feeds_only_a_missing_target_or_its_own(
    allowed, target_exists, fed_before, refused
):
    assert sample_api_refusal(allowed, target_exists, fed_before) == refused


def test_without_a_url_an_existing_target_gets_no_sample_rows(local_lake, prefect_api):
    lake.merge(ORDERS, samples.orders(10, seed=3))
    state = api_ingest(return_state=True)
    assert state.is_failed()
    assert "no API URL configured" in state.message
    assert lake.read(ORDERS).height == 10
    assert not lake.exists(ORDERS.source_bronze("api"))
