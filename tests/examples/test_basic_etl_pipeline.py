import os
import subprocess
import sys
from uuid import UUID

import pytest
from deltalake import DeltaTable

from flows import samples
from flows.catalog import EXAMPLE_DAILY_ORDER_TOTALS, EXAMPLE_ORDERS
from flows.core import lake
from flows.core.http_pages import records_table
from flows.examples.basic_etl_pipeline import (
    basic_etl_pipeline,
    daily_order_totals,
    rejection_reasons,
)
from tests.conftest import REPO_ROOT


def table_rows():
    return {
        t.path: lake.read(t).height
        for t in (
            EXAMPLE_ORDERS.bronze,
            EXAMPLE_ORDERS,
            EXAMPLE_ORDERS.quarantine,
            EXAMPLE_DAILY_ORDER_TOTALS,
        )
    }


def test_daily_order_totals_sums_per_day_and_status():
    import polars as pl

    frame = pl.DataFrame(
        {"order_date": [1, 1, 2], "status": ["a", "a", "b"], "amount": [1.0, 2.0, 5.0]}
    )
    assert daily_order_totals(frame).to_dicts() == [
        {"order_date": 1, "status": "a", "orders": 2, "revenue": 3.0},
        {"order_date": 2, "status": "b", "orders": 1, "revenue": 5.0},
    ]


def test_rejection_reasons_counts_each_reason():
    _, rejects = EXAMPLE_ORDERS.split(records_table(samples.order_records(5)))
    assert sorted(r["rows"] for r in rejection_reasons(rejects)) == [1, 1, 1]


def test_flow_loads_every_layer_quarantines_bad_rows_and_a_rerun_adds_nothing(
    any_lake, prefect_api
):
    summary = basic_etl_pipeline(rows=200)
    assert summary["extracted"] == 203
    assert (summary["valid"], summary["quarantined"]) == (200, 3)
    first = table_rows()
    assert first["bronze/example_orders"] == 203
    assert first["silver/example_orders"] == 200
    assert first["quarantine/example_orders"] == 3
    assert first["gold/example_daily_order_totals"] > 0

    reasons = set(lake.read(EXAMPLE_ORDERS.quarantine)["_reason"].to_list())
    assert reasons == {"amount: not a valid Float64", "order_id: is null", "amount: below 0"}
    gold_revenue = lake.read(EXAMPLE_DAILY_ORDER_TOTALS)["revenue"].sum()
    assert gold_revenue == pytest.approx(lake.read(EXAMPLE_ORDERS)["amount"].sum())

    commit = lake.history(EXAMPLE_ORDERS, limit=1)[0]
    UUID(commit["prefect.flow_run_id"])  # the commit names the flow run that wrote it
    assert commit["prefect.flow_name"] == "Basic ETL Pipeline"

    basic_etl_pipeline(rows=200)
    assert table_rows() == first


def test_api_source_survives_rate_limits_and_server_errors(local_lake, prefect_api, paged_api):
    records = samples.order_records(45, malformed=False)
    api = paged_api(records, failures={1: [429], 2: [500, 503]})
    summary = basic_etl_pipeline(api_url=api.url, per_page=20)
    assert (summary["extracted"], summary["valid"]) == (45, 45)
    assert len(api.requests) == 3 + 3  # three pages, three refused attempts
    assert set(lake.read(EXAMPLE_ORDERS.bronze)["_source"].to_list()) == {api.url}


def test_readme_run_command_leaves_tables_deltalake_opens(tmp_path, prefect_api):
    lake_dir = tmp_path / "lake"
    env = {**os.environ, "LAKE_URI": str(lake_dir), "PREFECT_API_URL": prefect_api}
    subprocess.run(
        [sys.executable, "flows/examples/basic_etl_pipeline.py", "--rows", "100"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    counts = {
        path: DeltaTable(str(lake_dir / path)).to_pyarrow_table().num_rows
        for path in ("bronze/example_orders", "silver/example_orders", "quarantine/example_orders")
    }
    assert counts == {
        "bronze/example_orders": 103,
        "silver/example_orders": 100,
        "quarantine/example_orders": 3,
    }
