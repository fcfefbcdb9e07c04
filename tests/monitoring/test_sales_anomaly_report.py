"""Sales anomalies by robust statistics, and the human approval gate in front of gold."""

import contextvars
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.flow_runs import resume_flow_run

from flows import samples
from flows.catalog import ORDERS, SALES_ANOMALIES
from flows.core import lake
from flows.monitoring.sales_anomalies.approval import approval_instructions
from flows.monitoring.sales_anomalies.flow import sales_anomaly_report
from flows.monitoring.sales_anomalies.transforms import (
    anomaly_report,
    daily_sales,
    outlier_orders,
    suspicious_days,
)

DAY = date(2024, 1, 1)


def orders(amounts, days=None):
    n = len(amounts)
    return pl.DataFrame(
        {
            "order_id": list(range(1, n + 1)),
            "order_date": days or [DAY] * n,
            "amount": [float(a) for a in amounts],
        }
    )


def test_a_planted_outlier_order_is_found_and_a_large_one_does_not_hide_it():
    amounts = [20, 22, 25, 19, 21, 24, 23, 20, 18, 22] * 5 + [5_000, 21_000]
    found = outlier_orders(orders(amounts))
    assert found["order_id"].to_list() == [52, 51]  # sorted by |z|
    assert found["robust_z"].min() > 3.5
    assert set(found["kind"]) == {"order"}


def test_ordinary_orders_are_not_outliers():
    sample = pl.from_arrow(samples.orders(2_000))
    found = outlier_orders(sample)
    assert found.height < sample.height * 0.01


def test_a_spike_day_is_suspicious():
    days = [DAY + timedelta(days=d) for d in range(30) for _ in range(10)]
    amounts = [20.0] * len(days)
    spike = [DAY + timedelta(days=12)] * 60
    daily = daily_sales(orders(amounts + [20.0] * 60, days + spike))

    found = suspicious_days(daily)

    assert found.select("order_date", "metric").rows() == [
        (DAY + timedelta(days=12), "orders"),
        (DAY + timedelta(days=12), "revenue"),
    ]
    assert found["anomaly_id"].to_list() == ["day:2024-01-13:orders", "day:2024-01-13:revenue"]


def test_the_report_holds_both_kinds_with_the_approval():
    outliers = outlier_orders(orders([20, 21, 22, 20, 19, 9_999]))
    days = suspicious_days(daily_sales(orders([1.0])))
    now = datetime(2024, 5, 1, tzinfo=UTC)
    report = anomaly_report(
        outliers, days, report_id="r1", orders_version=3, approval_comment="ok", published_at=now
    )
    SALES_ANOMALIES.conform(report.to_arrow())  # fits the gold contract
    assert report.select("report_id", "kind", "order_id", "approval_comment").rows() == [
        ("r1", "order", 6, "ok")
    ]


@pytest.mark.parametrize("ui_url", ["http://localhost:4200/", None])
def test_the_approval_instructions_say_where_and_how(ui_url):
    line = approval_instructions(
        "abc", ui_url=ui_url, api_url="http://127.0.0.1:1/api", timeout_seconds=60
    )
    assert ("http://localhost:4200/runs/flow-run/abc" in line) == (ui_url is not None)
    assert "PREFECT_API_URL=http://127.0.0.1:1/api" in line
    assert "resume_flow_run('abc'" in line
    assert "60 s" in line


def planted_orders():
    data = samples.orders(2_000)
    lake.append(ORDERS, data)
    return data.num_rows


def published():
    return lake.read(SALES_ANOMALIES) if lake.exists(SALES_ANOMALIES) else pl.DataFrame()


class Background:
    """The flow in a thread, so the test can watch its state and resume it through the API."""

    def __init__(self, **parameters):
        self.name = f"sales-test-{uuid.uuid4().hex[:8]}"
        self.result = None
        self.error = None
        run = sales_anomaly_report.with_options(flow_run_name=self.name)
        # The copied context carries the test's Prefect settings (the session's server).
        context = contextvars.copy_context()
        self.thread = threading.Thread(
            target=context.run, args=(self._run, run, parameters), daemon=True
        )
        self.thread.start()

    def _run(self, run, parameters):
        try:
            self.result = run(**parameters)
        except BaseException as error:  # surfaced by join()
            self.error = error

    def flow_run(self, timeout=90):
        """Wait until the run exists and is Paused."""
        deadline = time.monotonic() + timeout
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[self.name]))
                )
                if runs and runs[0].state and runs[0].state.is_paused():
                    return runs[0]
                assert self.thread.is_alive(), f"flow ended before pausing: {self.error}"
                time.sleep(0.5)
        raise TimeoutError(f"{self.name} did not pause within {timeout} s")

    def join(self, timeout=60):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.name} still running"
        if self.error:
            raise self.error
        return self.result


def resume(run_id, run_input, timeout=20):
    """Resume with input; the flow saves the input's schema just after it pauses."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return resume_flow_run(run_id, run_input=run_input)
        except RuntimeError as error:
            if "schema not found" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_an_approved_report_is_published_to_gold(local_lake, prefect_api):
    planted_orders()
    background = Background(approval_timeout_seconds=120)

    paused = background.flow_run()
    assert published().is_empty()  # nothing before the approval
    resume(paused.id, {"approve": True, "comment": "checked with sales"})
    summary = background.join()

    gold = published()
    assert summary["decision"] == "approved"
    assert (
        gold.height
        == summary["published"]
        == summary["outlier_orders"] + summary["suspicious_days"]
    )
    assert gold.height > 0
    assert set(gold["approval_comment"]) == {"checked with sales"}
    assert set(gold["report_id"]) == {summary["report_id"]}


def test_a_rejected_report_is_not_published(local_lake, prefect_api):
    planted_orders()
    background = Background(approval_timeout_seconds=120)

    resume(background.flow_run().id, {"approve": False, "comment": "a data load glitch"})
    summary = background.join()

    assert summary["decision"] == "rejected"
    assert published().is_empty()


def test_an_unanswered_report_times_out_unpublished(local_lake, prefect_api):
    planted_orders()
    state = sales_anomaly_report(approval_timeout_seconds=1, return_state=True)

    assert state.is_failed()  # an unreviewed report raises the failure alert
    assert published().is_empty()


def test_auto_approved_run_publishes_and_a_rerun_replaces_its_rows(any_lake, prefect_api):
    first = sales_anomaly_report(auto_approve=True, sample_data=True)  # fills silver/orders
    second = sales_anomaly_report(auto_approve=True)

    gold = published()
    assert first["report_id"] == second["report_id"]
    assert gold.height == first["published"] > 0
    assert gold["anomaly_id"].is_unique().all()
