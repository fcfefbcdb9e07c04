"""Fault: the worker process is killed (SIGKILL) in the middle of a deployment run."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable

import polars as pl
import pytest

from flows.catalog import EXAMPLE_DAILY_ORDER_TOTALS, EXAMPLE_ORDERS
from flows.core import lake
from flows.core.contracts import Table
from flows.core.http_pages import records_table
from flows.core.lineage import BATCH_COLUMN
from flows.examples.basic_etl_pipeline import (
    basic_etl_pipeline,
    daily_order_totals,
)
from tests.platform.conftest import BASIC_ETL, Platform, Worker, s3_lake_environment, sample_orders

pytestmark = pytest.mark.slow

ROWS = 20_000
TABLES: tuple[Table, ...] = (
    EXAMPLE_ORDERS.bronze,
    EXAMPLE_ORDERS,
    EXAMPLE_ORDERS.quarantine,
    EXAMPLE_DAILY_ORDER_TOTALS,
)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def test_killed_worker_crashes_the_run_and_a_rerun_ends_with_exactly_the_right_rows(
    deployed: Platform,
    platform_worker: Worker,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
):
    lake_env = s3_lake_environment(moto_endpoint, "crash")
    for name, value in lake_env.items():
        monkeypatch.setenv(name, value)
    deployment = f"{basic_etl_pipeline.name}/{BASIC_ETL['name']}"
    # This run's lake is its own bucket: the process work pool's `env` job variable.
    options = (
        "--param", f"rows={ROWS}",
        "--job-variable", f"env={json.dumps({'LAKE_URI': lake_env['LAKE_URI']})}",
    )  # fmt: skip

    crashed_id = deployed.run_deployment(deployment, *options)
    wait_until(lambda: lake.exists(EXAMPLE_ORDERS.bronze), "the run's first commit (bronze)")
    assert platform_worker.process is not None
    os.kill(platform_worker.process.pid, signal.SIGKILL)
    platform_worker.process.wait()

    crashed = deployed.wait_for_state(crashed_id)
    assert crashed["state_type"] == "CRASHED", crashed["state"]
    committed_by_crashed_run = [t.path for t in TABLES if lake.exists(t)]
    print(f"crashed run ({crashed['state']['message']}) left: {committed_by_crashed_run}")

    platform_worker.start()  # compose restarts it (restart: unless-stopped), systemd too
    rerun = deployed.wait_for_state(deployed.run_deployment(deployment, *options))
    assert rerun["state_type"] == "COMPLETED", platform_worker.log_tail()

    records = sample_orders(rows=ROWS)
    valid, rejects = EXAMPLE_ORDERS.split(records_table(records))
    bronze = lake.read(EXAMPLE_ORDERS.bronze)
    assert bronze.height == len(records)
    assert bronze[BATCH_COLUMN].n_unique() == 1
    silver = lake.read(EXAMPLE_ORDERS)
    assert silver.height == valid.num_rows
    assert silver["order_id"].n_unique() == silver.height
    assert sorted(silver["order_id"]) == sorted(valid.column("order_id").to_pylist())
    assert lake.read(EXAMPLE_ORDERS.quarantine).height == rejects.num_rows
    expected_gold = daily_order_totals(pl.from_arrow(valid)).sort("order_date", "status")
    gold = lake.read(EXAMPLE_DAILY_ORDER_TOTALS).sort("order_date", "status")
    assert gold.select("order_date", "status", "orders").equals(
        expected_gold.select("order_date", "status", "orders")
    )
    assert gold["revenue"].to_list() == pytest.approx(expected_gold["revenue"].to_list())
