"""`python -m flows.show`: the README's way to look at a table, on a local lake and on S3."""

import os
import subprocess
import sys

import pytest

from flows import samples
from flows.catalog import ORDERS, table_at
from flows.core import lake
from flows.core.errors import ConfigurationError
from flows.show import commit_rows
from tests.conftest import REPO_ROOT

RUNS = 10


def test_table_at_knows_the_catalog_and_reads_any_other_layer_path():
    assert table_at("silver/orders") is ORDERS
    assert table_at("bronze/anything").schema is None
    with pytest.raises(ConfigurationError, match="unknown table 'nolayer/x'"):
        table_at("nolayer/x")


def test_commit_rows_name_the_operation_rows_and_flow_run():
    history = [{"version": 4, "timestamp": 0, "operation": "MERGE",
                "operationMetrics": {"num_output_rows": 7}, "prefect.flow_name": "S3 Data Pipeline",
                "prefect.flow_run_name": "calm-otter"}]  # fmt: skip
    assert commit_rows(history) == [
        {"version": 4, "committed": "1970-01-01T00:00:00+00:00", "operation": "MERGE", "rows": 7,
         "flow": "S3 Data Pipeline", "flow run": "calm-otter"}
    ]  # fmt: skip


def show(*args):
    return subprocess.run(
        [sys.executable, "-m", "flows.show", *args],
        cwd=REPO_ROOT, env=os.environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_show_exits_0_run_after_run_once_a_flow_has_written(local_lake):
    lake.merge(ORDERS, samples.orders(500))
    lake.merge(ORDERS, samples.orders(500, seed=2))
    for _ in range(RUNS):  # the exit-134 abort at interpreter exit showed only sometimes
        done = show("silver/orders", "--rows", "3")
        assert done.returncode == 0, done.stderr[-2000:]
    assert "500 rows, version 2" in done.stdout
    assert "| 2 |" in done.stdout
    assert "order_id" in done.stdout


def test_show_reads_an_s3_lake_and_says_when_a_table_is_missing(s3_lake):
    lake.merge(ORDERS, samples.orders(50))
    done = show("silver/orders")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{s3_lake}/silver/orders" in done.stdout
    assert "50 rows" in done.stdout
    missing = show("gold/daily_order_totals")
    assert (missing.returncode, "no table at" in missing.stdout) == (0, True)
