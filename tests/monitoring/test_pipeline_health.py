"""Pipeline health: run statistics and rows written (pure), and the flow against a real Prefect
server with successful and failed runs of a probe flow that writes to a real lake."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest
from prefect import flow

from flows import samples
from flows.catalog import EVENTS, ORDERS, PIPELINE_METRICS
from flows.core import lake
from flows.core.quarantine import RESOLVED_AT_COLUMN
from flows.monitoring.health.flow import pipeline_health, put_cloudwatch_metrics
from flows.monitoring.health.metrics import (
    UNKNOWN_FLOW,
    RunRecord,
    cloudwatch_metric_data,
    flow_metrics,
    is_late,
    metric_rows,
    percentile,
    rows_written,
    table_writes,
)
from flows.monitoring.health.report import bar_chart, health_markdown
from tests.conftest import REPO_ROOT

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)


def _run(flow_name="a", state="COMPLETED", seconds=10.0, delay=0.0, name=None):
    return RunRecord(flow_name, str(uuid.uuid4()), state, name or state.title(), T0,
                     T0 + timedelta(seconds=delay), seconds)  # fmt: skip


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, None), ([5.0], 95, 5.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
     ([float(v) for v in range(1, 101)], 95, 95.05), ([3.0, 1.0, 2.0], 100, 3.0)],
)  # fmt: skip
def test_percentile(values, q, expected):
    assert percentile(values, q) == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("run", "late"),
    [(_run(delay=5), False), (_run(delay=120), True),
     (_run(state="SCHEDULED", name="Late", delay=0), True),
     (RunRecord("a", "x", "SCHEDULED", "Scheduled", T0, None, 0.0), False)],
)  # fmt: skip
def test_is_late(run, late):
    assert is_late(run, late_after_seconds=60) is late


def test_flow_metrics_rates_durations_and_late_runs():
    runs = [
        _run("etl", "COMPLETED", 10),
        _run("etl", "COMPLETED", 20, delay=300),
        _run("etl", "FAILED", 30),
        _run("etl", "CRASHED", 40),
        _run("etl", "CANCELLED", 99),
        _run("etl", "RUNNING", 0),
        _run("ml", "COMPLETED", 5),
    ]
    etl, ml = flow_metrics(runs, late_after_seconds=60)
    assert etl == {
        "flow": "etl", "runs": 6, "completed": 2, "failed": 1, "crashed": 1, "late": 1,
        "success_rate": 0.5, "failure_rate": 0.5, "duration_p50_s": 25.0, "duration_p95_s": 38.5,
    }  # fmt: skip
    assert (ml["success_rate"], ml["failure_rate"], ml["duration_p95_s"]) == (1.0, 0.0, 5.0)


def test_flow_with_no_finished_runs_has_no_rates():
    (row,) = flow_metrics([_run(state="RUNNING")], late_after_seconds=60)
    assert (row["success_rate"], row["failure_rate"], row["duration_p50_s"]) == (None, None, None)


@pytest.mark.parametrize(
    ("commit", "rows"),
    [
        ({"operation": "WRITE", "operationMetrics": {"num_added_rows": 7}}, 7),
        ({"operation": "MERGE", "operationMetrics": {"num_source_rows": 100,
          "num_target_rows_inserted": 2, "num_target_rows_updated": 3}}, 5),
        ({"operation": "DELETE", "operationMetrics": {"num_deleted_rows": 4}}, 4),
        ({"operation": "OPTIMIZE", "operationMetrics": {"num_added_rows": 50}}, None),
        ({"operation": "CREATE TABLE"}, None),
    ],
)  # fmt: skip
def test_rows_written_per_commit(commit, rows):
    assert rows_written(commit) == rows


def _commit(minutes_ago, rows, run_id="", flow_name=""):
    when = T0 - timedelta(minutes=minutes_ago)
    return {"timestamp": int(when.timestamp() * 1000), "operation": "WRITE",
            "operationMetrics": {"num_added_rows": rows}, "prefect.flow_run_id": run_id,
            "prefect.flow_name": flow_name}  # fmt: skip


def test_table_writes_are_attributed_to_flows_by_run_id_within_the_window():
    history = [
        _commit(1, 10, run_id="r1"),
        _commit(2, 5, run_id="r1"),
        _commit(3, 7, run_id="gone", flow_name="Old Name"),
        _commit(4, 3, run_id="local"),
        _commit(600, 1000, run_id="r1"),  # before the window
        {"timestamp": int(T0.timestamp() * 1000), "operation": "OPTIMIZE"},
    ]
    rows = table_writes("silver/x", history, T0 - timedelta(hours=1), {"r1": "Basic ETL"})
    assert rows == [
        {"table": "silver/x", "flow": UNKNOWN_FLOW, "commits": 1, "rows_written": 3},
        {"table": "silver/x", "flow": "Basic ETL", "commits": 2, "rows_written": 15},
        {"table": "silver/x", "flow": "Old Name", "commits": 1, "rows_written": 7},
    ]


def test_metric_rows_are_long_format():
    flows = flow_metrics([_run("etl")], late_after_seconds=60)
    writes = [{"table": "silver/x", "flow": "etl", "commits": 2, "rows_written": 15}]
    rows = metric_rows(flows, writes, run_id="r", measured_at=T0, window_hours=24)
    frame = pl.DataFrame(rows)
    assert frame.filter(pl.col("kind") == "table").select("subject", "flow_name", "metric",
                                                           "value").rows() == [
        ("silver/x", "etl", "commits", 2.0), ("silver/x", "etl", "rows_written", 15.0)]  # fmt: skip
    assert frame.filter((pl.col("kind") == "flow") & (pl.col("metric") == "success_rate"))[
        "value"
    ].to_list() == [1.0]
    pa.Table.from_pylist(rows, schema=PIPELINE_METRICS.schema)  # matches the contract


def test_report_has_charts_or_says_there_is_nothing():
    chart = bar_chart('Rows "written"', ["a", "b"], [1.0, 2.5], "rows")
    assert chart.splitlines()[:2] == ["```mermaid", "xychart-beta"]
    assert "bar [1, 2.5]" in chart
    assert "\"Rows 'written'\"" in chart
    assert "No flow runs" in health_markdown([], [], 24)
    report = health_markdown(flow_metrics([_run("etl")], 60),
                             [{"table": "t", "flow": "etl", "commits": 1, "rows_written": 9}], 24)  # fmt: skip
    assert report.count("xychart-beta") == 2
    rejects = [{"table": "quarantine/orders", "open_rejects": 2, "resolved_rejects": 3}]
    assert "## Quarantine: 2 rejects open, 3 resolved" in health_markdown([], [], 24, rejects)


@flow
def probe(start: int, fail: bool = False) -> None:
    events = samples.events(10).to_pylist()
    for offset, row in enumerate(events):
        row["event_id"] = start + offset
    lake.append(EVENTS, pa.Table.from_pylist(events))
    if fail:
        raise ValueError("planted failure")


def test_rates_and_rows_written_on_a_server_with_successful_and_failed_runs(prefect_api, any_lake):
    name = f"Health Probe {uuid.uuid4().hex[:8]}"
    named = probe.with_options(name=name)
    lake.append(ORDERS.quarantine, pa.table({"order_id": ["1", "2"], "_reason": ["bad", "bad"],
                                             RESOLVED_AT_COLUMN: [datetime.now(UTC), None]}))  # fmt: skip
    for start in (0, 100, 200):
        named(start)
    assert named(300, fail=True, return_state=True).is_failed()

    state = pipeline_health(hours=1, return_state=True)

    assert state.is_completed(), state.message
    result = state.result()
    (row,) = [r for r in result["flows"] if r["flow"] == name]
    assert (row["runs"], row["completed"], row["failed"]) == (4, 3, 1)
    assert (row["success_rate"], row["failure_rate"]) == (0.75, 0.25)
    assert row["duration_p50_s"] is not None
    assert row["duration_p95_s"] >= row["duration_p50_s"]
    (written,) = [w for w in result["tables"] if w["flow"] == name]
    assert (written["table"], written["commits"], written["rows_written"]) == ("silver/events",
                                                                               4, 40)  # fmt: skip
    assert result["rejects"] == [
        {"table": "quarantine/orders", "open_rejects": 1, "resolved_rejects": 1}
    ]
    metrics = lake.read(PIPELINE_METRICS)
    recorded = metrics.filter((pl.col("subject") == name) & (pl.col("metric") == "failure_rate"))
    assert recorded["value"].to_list() == [0.25]


@pytest.mark.slow
def test_script_runs_on_the_defaults(prefect_api, local_lake):
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    script = REPO_ROOT / "flows" / "monitoring" / "pipeline_health.py"
    done = subprocess.run([sys.executable, str(script), "--hours", "1"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_cloudwatch_data_holds_each_run_that_finished_in_the_window_once():
    runs = [
        _run("a", "COMPLETED", seconds=30),
        _run("a", "FAILED", seconds=5),
        _run("b", "CRASHED", seconds=600),
        _run("b", "RUNNING", seconds=1),
        _run("c", "COMPLETED", seconds=1),  # ended before the window
    ]
    data = cloudwatch_metric_data(runs, finished_after=T0 + timedelta(seconds=2))
    failed = {
        (d["Dimensions"][0]["Value"], d["Value"]) for d in data if d["MetricName"] == "FailedRuns"
    }
    assert sorted(failed) == [("a", 0.0), ("a", 1.0), ("b", 1.0)]
    durations = [d for d in data if d["MetricName"] == "DurationSeconds"]
    assert [d["Timestamp"] for d in durations] == [
        T0 + timedelta(seconds=30), T0 + timedelta(seconds=5), T0 + timedelta(seconds=600)
    ]  # fmt: skip


def test_failed_runs_reach_cloudwatch_in_the_namespace(s3_env):
    import boto3

    namespace = f"Test/{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    started = now - timedelta(minutes=5)
    runs = [RunRecord("f", str(uuid.uuid4()), state, state.title(), started, started, 60.0)
            for state in ("FAILED", "COMPLETED", "CRASHED")]  # fmt: skip
    data = cloudwatch_metric_data(runs, finished_after=now - timedelta(hours=1))
    assert put_cloudwatch_metrics.fn(namespace, data) == 6
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName="FailedRuns", Dimensions=[{"Name": "Flow", "Value": "f"}],
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=1), Period=3600,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]  # fmt: skip
    assert [(p["Sum"], p["SampleCount"]) for p in points] == [(2.0, 3.0)]
