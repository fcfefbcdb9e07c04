"""Data quality monitor: the pure signals (freshness, volume, drift, score) and the flow catching
planted problems on a real lake (local and moto S3) against a real Prefect server."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest

from flows import samples
from flows.catalog import (
    CUSTOMERS,
    EVENTS,
    ORDERS,
    PRODUCTS,
    QUALITY_RESULTS,
    TRANSACTIONS,
    selected_tables,
)
from flows.core import lake, storage
from flows.core.quality import CheckResult
from flows.core.quarantine import RESOLVED_AT_COLUMN
from flows.monitoring.data_quality import flow as monitor
from flows.monitoring.data_quality.checks import (
    data_commits,
    freshness_result,
    rows_delivered,
    sample_step,
    schema_drift_results,
    volume_result,
)
from flows.monitoring.data_quality.report import failures_markdown, health_score, status
from tests.conftest import REPO_ROOT

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)


# --- pure signals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commit", "rows"),
    [
        ({"operation": "WRITE", "operationMetrics": {"num_added_rows": 7}}, 7),
        ({"operation": "MERGE", "operationMetrics": {"num_source_rows": 9,
                                                     "num_target_rows_inserted": 2}}, 9),
        ({"operation": "OPTIMIZE", "operationMetrics": {"num_added_rows": 100}}, None),
        ({"operation": "VACUUM END", "operationMetrics": {}}, None),
        ({"operation": "DELETE", "operationMetrics": {"num_deleted_rows": 3}}, None),
        ({"operation": "WRITE", "operationMetrics": {}}, None),
    ],
)  # fmt: skip
def test_rows_delivered_counts_only_data_commits(commit, rows):
    assert rows_delivered(commit) == rows


def _commits(*rows, newest=NOW, spacing=timedelta(hours=1)):
    """Data commits newest first, one per `spacing`."""
    return [(newest - i * spacing, r) for i, r in enumerate(rows)]


def test_data_commits_skip_maintenance_and_keep_log_order():
    history = [
        {"operation": "OPTIMIZE", "timestamp": 3_000, "operationMetrics": {}},
        {"operation": "MERGE", "timestamp": 2_000, "operationMetrics": {"num_source_rows": 5}},
        {"operation": "WRITE", "timestamp": 1_000, "operationMetrics": {"num_added_rows": 4}},
    ]
    assert data_commits(history) == [
        (datetime.fromtimestamp(2, UTC), 5),
        (datetime.fromtimestamp(1, UTC), 4),
    ]


@pytest.mark.parametrize(
    ("sla", "commits", "success"),
    [
        (None, _commits(10), None),
        (24, _commits(10, newest=NOW - timedelta(hours=23)), True),
        (24, _commits(10, newest=NOW - timedelta(hours=25)), False),
        (24, [], False),
    ],
)
def test_freshness_against_the_sla(sla, commits, success):
    result = freshness_result(dataclasses.replace(ORDERS, freshness_hours=sla), commits, NOW)
    assert (result.success if result else None) == success
    if result is not None:
        assert result.severity == "critical"


@pytest.mark.parametrize(
    ("rows", "success", "word"),
    [
        ((10, 1000, 1000, 1000), True, "need 5"),  # too little history to judge
        ((1000, 1000, 1000, 1000, 1000, 1000), True, "robust z 0.0"),
        ((990, 1000, 1000, 1000, 1000, 1000), True, "robust z -0.1"),  # steady history, wobble
        ((10, 1000, 980, 1010, 1005, 995, 990), False, "a drop"),
        ((9000, 1000, 980, 1010, 1005, 995, 990), False, "a spike"),
        ((2200, 1000, 3000, 1500, 2500, 2000, 1800), True, "robust z"),  # noisy history
    ],
)
def test_volume_against_the_tables_own_history(rows, success, word):
    result = volume_result(ORDERS, _commits(*rows))
    assert result.success is success
    assert word in result.observed
    assert result.severity == "warning"


def test_volume_window_ignores_older_commits():
    rows = (10, 12, 11, 9, 10, 12, *[5000] * 20)
    assert volume_result(ORDERS, _commits(*rows), window=5).success
    assert not volume_result(ORDERS, _commits(*rows), window=25).success


@pytest.mark.parametrize(
    ("actual", "failures"),
    [
        (ORDERS.schema, set()),
        (ORDERS.schema.remove(ORDERS.schema.get_field_index("status")),
         {("status", "critical", "column missing")}),
        (ORDERS.schema.set(ORDERS.schema.get_field_index("amount"), pa.field("amount", pa.string())),
         {("amount", "critical", "string")}),
        (ORDERS.schema.append(pa.field("note", pa.string())),
         {("note", "warning", "column not in the contract (string)")}),
        (ORDERS.schema.set(ORDERS.schema.get_field_index("status"),
                           pa.field("status", pa.large_string())), set()),
    ],
)  # fmt: skip
def test_schema_drift_against_the_contract(actual, failures):
    results = schema_drift_results(ORDERS, actual)
    assert {(r.column, r.severity, r.observed) for r in results if not r.success} == failures


def test_list_columns_do_not_drift_on_the_item_field_name():
    contract = dataclasses.replace(
        ORDERS, schema=pa.schema([("xs", pa.list_(pa.int64()))]), key=(), partition_by=(),
        newest_by=None,
    )  # fmt: skip
    delta_style = pa.schema([("xs", pa.list_(pa.field("element", pa.int64())))])
    assert all(r.success for r in schema_drift_results(contract, delta_style))


def _result(severity, success):
    return CheckResult("silver/x", "c", None, severity, success)


@pytest.mark.parametrize(
    ("results", "score", "state"),
    [
        ([], 100.0, "ok"),
        ([_result("critical", True), _result("warning", True)], 100.0, "ok"),
        ([_result("critical", True), _result("warning", False)], 83.3, "warning"),
        ([_result("critical", False), _result("warning", True)], 16.7, "critical"),
    ],
)
def test_health_score_weights_critical_failures(results, score, state):
    assert health_score(results) == score
    assert status(results) == state


@pytest.mark.parametrize(
    ("total", "limit", "step"), [(0, 10, 1), (10, 10, 1), (11, 10, 2), (1_000_000, 200_000, 5)]
)
def test_sample_step(total, limit, step):
    assert sample_step(total, limit) == step


def test_failures_report_lists_failed_checks_and_absent_tables():
    report = failures_markdown(
        [_result("critical", False), _result("warning", True)], ["gold/daily_order_totals"]
    )
    assert "## Failed checks: 1" in report
    assert "| silver/x | c |  | critical |" in report
    assert report.endswith("not in the lake (not checked): `gold/daily_order_totals`")
    assert failures_markdown([], []).endswith("(not checked): none")


# --- the flow on a real lake --------------------------------------------------------------------


def _with_ids(data: pa.Table, column: str, start: int) -> pa.Table:
    index = data.schema.get_field_index(column)
    return data.set_column(index, column, pa.array(range(start, start + data.num_rows), pa.int64()))


def _seed_healthy(tables=(CUSTOMERS, TRANSACTIONS, EVENTS)):
    writers = {
        CUSTOMERS: lambda: lake.merge(CUSTOMERS, samples.customers(120)),
        PRODUCTS: lambda: lake.merge(PRODUCTS, samples.products(40)),
        TRANSACTIONS: lambda: lake.append(TRANSACTIONS, samples.transactions(200)),
        EVENTS: lambda: lake.append(EVENTS, samples.events(200)),
    }
    for table in tables:
        writers[table]()


def _results(run_id=None) -> pl.DataFrame:
    results = lake.read(QUALITY_RESULTS)
    return results if run_id is None else results.filter(pl.col("run_id") == run_id)


def _failed(results: pl.DataFrame) -> set[tuple[str, str, str | None]]:
    return set(results.filter(~pl.col("success")).select("table", "check", "column").iter_rows())


def test_healthy_lake_passes_and_writes_results_and_data_docs(prefect_api, any_lake):
    _seed_healthy()
    state = monitor.data_quality_monitor(return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert {row["table"] for row in summary} == {"silver/customers", "silver/transactions",
                                                 "silver/events"}  # fmt: skip
    assert {row["status"] for row in summary} == {"ok"}
    assert {row["health_score"] for row in summary} == {100.0}
    results = _results()
    assert results["run_id"].n_unique() == 1
    assert results.height > 60
    assert set(results["check"]) >= {"freshness", "volume", "schema_drift",
                                     "expect_column_values_to_be_unique"}  # fmt: skip
    assert storage.object_exists("_ops/data_docs/index.html")
    index = storage.read_bytes("_ops/data_docs/index.html").decode()
    assert "silver.customers" in index

    def validation_pages():
        return [p for p in storage.list_objects("_ops/data_docs/validations") if p.endswith("html")]

    first = validation_pages()
    assert len(first) == 3
    assert monitor.data_quality_monitor(return_state=True).is_completed()
    second = validation_pages()  # the previous run's pages are gone, this run's are there
    assert len(second) == 4  # _ops/quality_results is now a table too
    assert not set(first) & set(second)


def test_empty_lake_says_so_and_succeeds(prefect_api, local_lake):
    state = monitor.data_quality_monitor(return_state=True)
    assert state.is_completed()
    assert state.result() == []
    assert not lake.exists(QUALITY_RESULTS)


def test_each_planted_problem_is_caught_recorded_and_fails_the_run(
    prefect_api, local_lake, monkeypatch
):
    # nulls in a key: written by a writer that does not enforce the contract
    customers_schema = CUSTOMERS.schema.set(0, CUSTOMERS.schema.field(0).with_nullable(True))
    loose_customers = dataclasses.replace(CUSTOMERS, schema=customers_schema)
    customers = samples.customers(60).to_pylist()
    for row in customers[:3]:
        row["customer_id"] = None
    lake.append(loose_customers, pa.Table.from_pylist(customers, schema=customers_schema))
    # out-of-range values
    products = samples.products(40).to_pylist()
    for row in products[:4]:
        row["price"] = -5.0
    lake.append(PRODUCTS, pa.Table.from_pylist(products))
    # a dropped column
    without_status = ORDERS.schema.remove(ORDERS.schema.get_field_index("status"))
    lake.append(dataclasses.replace(ORDERS, schema=without_status), samples.orders(50))
    # a stale table: its SLA is shorter than the time since its last commit
    lake.append(EVENTS, samples.events(100))
    stale_events = dataclasses.replace(EVENTS, freshness_hours=1e-9)
    monkeypatch.setattr(monitor, "selected_tables", lambda paths: [
        stale_events if t is EVENTS else t for t in selected_tables(paths)])  # fmt: skip
    # a volume drop: six steady deliveries, then almost nothing
    for batch in range(6):
        lake.append(TRANSACTIONS, _with_ids(samples.transactions(300, seed=batch),
                                            "transaction_id", batch * 1000))  # fmt: skip
    lake.append(TRANSACTIONS, _with_ids(samples.transactions(4), "transaction_id", 90_000))

    state = monitor.data_quality_monitor(return_state=True)

    assert state.is_failed()
    assert "critical quality failures" in state.message
    failed = _failed(_results())
    assert ("silver/customers", "expect_column_values_to_not_be_null", "customer_id") in failed
    assert ("silver/products", "expect_column_values_to_be_between", "price") in failed
    assert ("silver/orders", "expect_column_to_exist", "status") in failed
    assert ("silver/orders", "schema_drift", "status") in failed
    assert ("silver/events", "freshness", None) in failed
    assert ("silver/transactions", "volume", None) in failed
    nulls = _results().filter((pl.col("table") == "silver/customers")
                              & (pl.col("check") == "expect_column_values_to_not_be_null")
                              & (pl.col("column") == "customer_id"))  # fmt: skip
    assert nulls.row(0, named=True)["unexpected_count"] == 3
    transactions = _results().filter(pl.col("table") == "silver/transactions")
    assert _failed(transactions) == {("silver/transactions", "volume", None)}


def test_a_damaged_table_is_a_critical_finding_and_the_others_are_still_checked(
    prefect_api, local_lake, monkeypatch
):
    _seed_healthy((CUSTOMERS, EVENTS))
    lake.append(EVENTS, _with_ids(samples.events(50), "event_id", 10_000))
    lake.append(EVENTS, _with_ids(samples.events(50), "event_id", 20_000))
    commit = local_lake / "silver" / "events" / "_delta_log" / f"{1:020d}.json"
    commit.write_text('{"add": {"path": "part-0')
    monkeypatch.setattr(monitor, "read_snapshot", monitor.read_snapshot.with_options(retries=0))

    state = monitor.data_quality_monitor(return_state=True)

    assert state.is_failed()
    results = _results()
    (damaged,) = results.filter(pl.col("table") == "silver/events").rows(named=True)
    assert (damaged["check"], damaged["success"]) == ("readable", False)
    assert "Delta log cannot be replayed" in damaged["observed"]
    customers = results.filter(pl.col("table") == "silver/customers")
    assert customers.height > 20
    assert customers["success"].all()


def test_warnings_alone_are_recorded_without_failing_the_run(prefect_api, local_lake):
    products = samples.products(40).to_pylist()
    products[0]["price"] = 1e9
    lake.append(PRODUCTS, pa.Table.from_pylist(products))
    state = monitor.data_quality_monitor(return_state=True)
    assert state.is_completed()
    assert state.result()[0]["status"] == "warning"
    assert _failed(_results()) == {("silver/products", "expect_column_values_to_be_between",
                                    "price")}  # fmt: skip


def test_large_tables_are_validated_on_a_sample(prefect_api, local_lake):
    _seed_healthy((TRANSACTIONS,))
    state = monitor.data_quality_monitor(max_rows=50, return_state=True)
    assert state.is_completed()
    row = state.result()[0]
    assert (row["rows_total"], row["rows_checked"]) == (200, 50)


@pytest.mark.slow
def test_script_runs_on_the_defaults(prefect_api, local_lake):
    _seed_healthy((CUSTOMERS,))
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    script = REPO_ROOT / "flows" / "monitoring" / "data_quality_monitor.py"
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=local_lake.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (local_lake / "_ops" / "data_docs" / "index.html").is_file()
    assert lake.read(QUALITY_RESULTS)["success"].all()


def test_a_quarantine_table_reports_its_open_and_resolved_rejects(prefect_api, local_lake):
    lake.append(ORDERS.quarantine, pa.table({"order_id": ["1", "2", "3"], "_reason": ["bad"] * 3,
                                             RESOLVED_AT_COLUMN: [datetime.now(UTC), None, None]}))  # fmt: skip
    state = monitor.data_quality_monitor(tables=["quarantine/orders"], return_state=True)
    assert state.is_completed(), state.message
    (row,) = state.result()
    assert (row["open_rejects"], row["resolved_rejects"]) == (2, 1)
