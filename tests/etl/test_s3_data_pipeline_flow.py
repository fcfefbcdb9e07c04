"""The S3 data pipeline flow end to end: zero-config run, re-runs, a SIGKILL between bronze and
silver, concurrent runs on moto S3, Glue registration, unsafe parameters."""

import dataclasses
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import polars as pl
import pyarrow.csv as pacsv
import pytest
from polars.testing import assert_frame_equal

import flows.catalog
from flows import samples
from flows.catalog import (
    CUSTOMER_LIFETIME_VALUE,
    CUSTOMERS,
    DAILY_CATEGORY_REVENUE,
    LANDING_FILES,
    ORDER_STATUSES,
    ORDERS,
    PRODUCTS,
)
from flows.core import lake, storage
from flows.core.checks import one_of
from flows.core.errors import UnsafePathError
from flows.core.quarantine import RESOLVED_BY_COLUMN, RejectCounts, reject_counts
from flows.etl.s3_data_pipeline import s3_data_pipeline
from flows.etl.s3_pipeline.samples import late_updates

REPO = Path(__file__).resolve().parents[2]
FLOW = REPO / "flows" / "etl" / "s3_data_pipeline.py"
TABLES = [ORDERS, CUSTOMERS, PRODUCTS, DAILY_CATEGORY_REVENUE, CUSTOMER_LIFETIME_VALUE]
ALL_TABLES = [*TABLES, *(t.bronze for t in TABLES[:3]), ORDERS.quarantine, LANDING_FILES]
VOLATILE = [
    "_run_id",
    "_ingested_at",
    "run_id",
    "tag",
    "_batch_id",
    "batch_id",
]  # local tags are mtimes
SAMPLE_ROWS = 3_404  # 1000 customers + 200 products + 2000 orders + 200 updates + 4 malformed


def snapshot():
    """Every table's rows, without what legitimately differs between runs (run ids, times)."""
    frames = {}
    for table in ALL_TABLES:
        frame = lake.read(table)
        if table is LANDING_FILES:
            frame = frame.drop("updated_at")
        frame = frame.drop([c for c in VOLATILE if c in frame.columns])
        # sums over differently laid out files may differ in the last bits
        frame = frame.with_columns(pl.col(pl.Float64).round(6))
        frames[table.path] = frame.select(sorted(frame.columns)).sort(sorted(frame.columns))
    return frames


def assert_same_tables(left, right):
    assert left.keys() == right.keys()
    for path in left:
        try:
            assert_frame_equal(left[path], right[path], check_dtypes=False)
        except AssertionError as difference:
            raise AssertionError(f"{path} differs: {difference}") from None


def test_zero_config_run_builds_every_table_and_a_rerun_changes_nothing(any_lake, prefect_api):
    glue = "lake_test" if any_lake.startswith("s3://") else None
    summary = s3_data_pipeline(glue_database=glue, sample_data=True)  # off by default on S3
    assert summary["files_ingested"] == 6
    assert summary["files_failed"] == 0
    assert summary["rows_parsed"] == SAMPLE_ROWS
    assert summary["rows_conformed"] == summary["rows_valid"] + summary["rows_quarantined"]
    bronze_rows = sum(lake.read(t.bronze).height for t in (ORDERS, CUSTOMERS, PRODUCTS))
    assert bronze_rows == summary["rows_parsed"] == summary["rows_conformed"]
    assert lake.read(ORDERS.quarantine).height == summary["rows_quarantined"] == 4
    orders = lake.read(ORDERS)
    assert orders.height == 2_000
    updated = late_updates(samples.orders(2_000, seed=42))["order_id"].to_pylist()
    assert set(orders.filter(pl.col("order_id").is_in(updated))["status"]) == {"shipped"}
    gold = lake.read(DAILY_CATEGORY_REVENUE)
    kept = orders.filter(pl.col("status") != "cancelled")
    assert gold["revenue"].sum() == pytest.approx(kept["amount"].sum())
    assert lake.read(CUSTOMER_LIFETIME_VALUE)["orders"].sum() == kept.height

    before = {t.path: lake.version(t) for t in TABLES}
    again = s3_data_pipeline(glue_database=glue)
    assert (again["files_done_before"], again["rows_parsed"]) == (6, 0)
    assert {t.path: lake.version(t) for t in TABLES} == before

    if glue:
        client = boto3.client("glue")
        tables = {t["Name"]: t for t in client.get_tables(DatabaseName=glue)["TableList"]}
        assert {"silver_orders", "bronze_orders", "gold_daily_category_revenue"} <= set(tables)
        orders_table = tables["silver_orders"]
        assert orders_table["StorageDescriptor"]["Location"] == lake.location(ORDERS)
        assert orders_table["PartitionKeys"] == [{"Name": "order_date", "Type": "date"}]


def test_only_new_files_are_read_on_the_next_run(local_lake, prefect_api):
    s3_data_pipeline()
    (local_lake / "landing/orders/2024-04-orders.csv").write_text(
        "order_id,customer_id,product_id,quantity,amount,status,order_date,updated_at\n"
        "5000,1,1,1,9.5,placed,2024-04-01,2024-04-01T00:00:00+00:00\n"
    )
    summary = s3_data_pipeline()
    assert (summary["files_ingested"], summary["files_done_before"]) == (1, 6)
    assert summary["rows_parsed"] == 1
    assert lake.read(ORDERS).height == 2_001
    day = lake.read(DAILY_CATEGORY_REVENUE, where=pl.col("order_date") == pl.date(2024, 4, 1))
    assert day["revenue"].to_list() == [9.5]


@pytest.mark.parametrize(
    "parameters",
    [{"landing": "../outside"}, {"landing": "/etc"}, {"landing": "s3://another-bucket/landing"},
     {"sources": ["../orders"]}],
)  # fmt: skip
def test_parameters_cannot_escape_the_lake_root(local_lake, prefect_api, parameters):
    with pytest.raises(UnsafePathError):
        s3_data_pipeline(**parameters)
    assert not local_lake.exists()


KILL_BETWEEN_BRONZE_AND_SILVER = textwrap.dedent(
    """
    import os, signal
    import flows.etl.s3_pipeline.flow as pipeline

    class KillBeforeSilver:
        def submit(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

    pipeline.conform_source = KillBeforeSilver()
    pipeline.s3_data_pipeline()
    """
)


@pytest.mark.slow
def test_sigkill_between_bronze_and_silver_then_rerun_equals_a_clean_run(
    tmp_path, prefect_api, monkeypatch
):
    clean_uri, killed_uri = str(tmp_path / "clean"), str(tmp_path / "killed")
    environment = {**os.environ, "PREFECT_API_URL": prefect_api}
    clean = subprocess.Popen(  # the zero-config command line, as a user runs it
        [sys.executable, str(FLOW)], env={**environment, "LAKE_URI": clean_uri}, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    killed = subprocess.Popen(
        [sys.executable, "-c", KILL_BETWEEN_BRONZE_AND_SILVER],
        env={**environment, "LAKE_URI": killed_uri}, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    codes, outputs = finish([clean, killed])
    assert codes == [0, -9], "\n".join(o[-3000:] for o in outputs)

    monkeypatch.setenv("LAKE_URI", killed_uri)
    assert lake.read(ORDERS.bronze).height > 0
    assert not lake.exists(ORDERS)
    assert set(lake.read(LANDING_FILES)["status"]) == {"bronze"}
    summary = s3_data_pipeline()
    assert summary["rows_parsed"] == 0  # the bronze commits survived the kill
    assert summary["rows_conformed"] == SAMPLE_ROWS
    after_rerun = snapshot()
    monkeypatch.setenv("LAKE_URI", clean_uri)
    assert_same_tables(after_rerun, snapshot())


def write_orders_landing(landing, files=2, rows=50):
    """A small landing of orders CSV files (ids overlap between calls: silver must dedupe)."""
    orders = samples.orders(files * rows)
    for part in range(files):
        sink = io.BytesIO()
        pacsv.write_csv(orders.slice(part * rows, rows), sink)
        storage.write_bytes(f"{landing}/orders/part-{part}.csv", sink.getvalue())
    return files * rows


def start_cli(lake_uri, prefect_api, *args):
    return subprocess.Popen(
        [sys.executable, str(FLOW), "--no-sample-data", *args],
        env={**os.environ, "LAKE_URI": lake_uri, "PREFECT_API_URL": prefect_api},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(runs):
    outputs = [run.communicate(timeout=240)[0] for run in runs]
    return [run.returncode for run in runs], outputs


@pytest.mark.slow
def test_two_pipelines_on_s3_at_once_lose_no_commit(s3_lake, s3_env, prefect_api):
    rows = write_orders_landing("landing-a")
    write_orders_landing("landing-b")
    codes, outputs = finish([start_cli(s3_lake, prefect_api, "--landing", landing)
                             for landing in ("landing-a", "landing-b")])  # fmt: skip
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outputs)
    bronze = lake.read(ORDERS.bronze)
    assert sorted(bronze.group_by("_run_id").len()["len"].to_list()) == [rows, rows]
    assert lake.read(ORDERS).height == rows  # the same orders twice: merged, not duplicated
    assert lake.read(LANDING_FILES).height == 4
    assert set(lake.read(LANDING_FILES)["status"]) == {"done"}


@pytest.mark.slow
def test_one_pipeline_started_twice_at_once_keeps_the_tables_exact(s3_lake, s3_env, prefect_api):
    rows = write_orders_landing("landing")
    codes, outputs = finish([start_cli(s3_lake, prefect_api) for _ in range(2)])
    assert 0 in codes, "\n".join(o[-3000:] for o in outputs)
    for code, output in zip(codes, outputs, strict=True):
        if code != 0:  # refused, never half-done: the message says what to do
            assert "another writer committed" in output or "re-run" in output, output[-3000:]
    s3_data_pipeline(sample_data=False)  # converges whatever the interleaving was
    assert lake.read(ORDERS.bronze).height == rows  # each delivery exactly once
    assert lake.read(ORDERS).height == rows
    assert set(lake.read(LANDING_FILES)["status"]) == {"done"}


def test_a_duplicated_header_fails_alone_and_is_not_tried_again(local_lake, prefect_api):
    valid_rows = write_orders_landing("landing")
    storage.write_bytes(
        "landing/orders/duplicated.csv",
        b"order_id,order_id,customer_id,product_id,quantity,amount,status,order_date,updated_at\n"
        b"9001,9001,1,1,1,5.0,placed,2024-01-02,2024-01-02T00:00:00+00:00\n",
    )

    state = s3_data_pipeline(sample_data=False, return_state=True)

    assert state.is_completed()
    assert (
        state.message == "2 file(s) ingested; 1 failed alone (see the s3-pipeline-files artifact)"
    )
    assert lake.read(ORDERS).height == valid_rows
    manifest = lake.read(LANDING_FILES).sort("source_file")
    failed = manifest.filter(pl.col("status") == "failed").row(0, named=True)
    assert failed["source_file"] == "landing/orders/duplicated.csv"
    assert "['order_id'] appear more than once" in failed["error"]
    assert not lake.read(ORDERS.bronze).filter(pl.col("_source").str.contains("duplicated")).height

    again = s3_data_pipeline(sample_data=False)
    assert (again["files_ingested"], again["files_failed"], again["files_done_before"]) == (0, 0, 3)
    assert lake.read(LANDING_FILES).sort("source_file").equals(manifest)

    retried = s3_data_pipeline(sample_data=False, retry_failed="landing/orders/duplicated.csv")
    assert (retried["files_failed"], retried["files_done_before"]) == (1, 2)
    assert lake.read(ORDERS).height == valid_rows


def test_after_a_contract_fix_reconform_moves_rows_from_quarantine_to_silver(
    local_lake, prefect_api, monkeypatch
):
    header = "order_id,customer_id,product_id,quantity,amount,status,order_date,updated_at\n"
    storage.write_bytes(
        "landing/orders/returns.csv",
        (header + "1,1,1,1,5.0,placed,2024-01-02,2024-01-02T00:00:00+00:00\n"
         "2,1,1,1,6.0,returned,2024-01-02,2024-01-02T00:00:00+00:00\n").encode(),
    )  # fmt: skip
    s3_data_pipeline(sample_data=False)
    assert lake.read(ORDERS)["order_id"].to_list() == [1]
    assert lake.read(ORDERS.quarantine).height == 1

    others = [c for c in ORDERS.checks if getattr(c, "column", "") != "status"]
    fixed = dataclasses.replace(
        ORDERS, checks=(*others, one_of("status", (*ORDER_STATUSES, "returned")))
    )
    monkeypatch.setattr(flows.catalog, "CATALOG",
                        tuple(fixed if t is ORDERS else t for t in flows.catalog.CATALOG))  # fmt: skip
    unchanged = s3_data_pipeline(sample_data=False)
    assert (unchanged["rows_conformed"], lake.read(ORDERS).height) == (0, 1)

    replayed = s3_data_pipeline(sample_data=False, reconform="orders")
    assert (replayed["rows_conformed"], replayed["rows_valid"]) == (2, 2)
    assert sorted(lake.read(ORDERS)["order_id"].to_list()) == [1, 2]
    assert reject_counts(lake.scan(ORDERS.quarantine)) == RejectCounts(open=0, resolved=1)
    resolved = lake.read(ORDERS.quarantine).row(0, named=True)
    assert (resolved["order_id"], resolved[RESOLVED_BY_COLUMN]) == (
        "2",
        "landing/orders/returns.csv",
    )
    assert lake.read(LANDING_FILES)["quarantined"].to_list() == [0]
    day = lake.read(DAILY_CATEGORY_REVENUE)
    assert day["revenue"].sum() == 11.0

    resolved_rows = lake.read(ORDERS.quarantine)
    again = s3_data_pipeline(sample_data=False, reconform="landing/orders/returns.csv")
    assert again["rows_valid"] == 2
    assert sorted(lake.read(ORDERS)["order_id"].to_list()) == [1, 2]
    assert lake.read(ORDERS.quarantine).equals(resolved_rows)
