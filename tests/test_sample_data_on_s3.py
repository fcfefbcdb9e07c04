"""Sample data never reaches a real lake: on an empty S3 lake with LAKE_SAMPLE_DATA=off, every flow
that has an input either ingests its own data or stops, writes nothing and names what produces
the input; a run started by hand fails with that, a scheduled (deployment) run completes with it.

A deployment run is recognised through Prefect's runtime (`prefect.runtime.deployment.id`), set
here the way Prefect documents for tests: PREFECT__RUNTIME__DEPLOYMENT__ID.
"""

import importlib
import inspect

import pytest
import yaml

from flows.catalog import physical_tables
from flows.core import lake
from flows.core.settings import REPO_ROOT
from flows.etl.api_ingest import api_ingest
from flows.etl.batch_processing import batch_processing
from flows.etl.s3_data_pipeline import s3_data_pipeline
from flows.etl.stream_enrichment import stream_enrichment
from flows.examples import tables as examples
from flows.ml.batch_inference import batch_inference
from flows.ml.feature_engineering_pipeline import feature_engineering_pipeline
from flows.ml.fraud_detection import fraud_detection
from flows.ml.training_pipeline import training_pipeline
from flows.monitoring.realtime_analytics import realtime_analytics
from flows.monitoring.sales_anomaly_report import sales_anomaly_report
from flows.monitoring.table_maintenance import table_maintenance

PREFECT_YAML = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())

# flow, the parameters its deployment would pass beyond sample_data, what the message must name
STOPPING = [
    (sales_anomaly_report, {"auto_approve": True}, "landing/orders/"),
    (realtime_analytics, {}, "landing/events/"),
    (stream_enrichment, {}, "landing/customers/"),
    (batch_processing, {}, "landing/transactions/"),
    (feature_engineering_pipeline, {}, "landing/orders/"),
    (fraud_detection, {}, "landing/transactions/"),
    (training_pipeline, {}, "landing/orders/"),
    (batch_inference, {"bootstrap": False}, "flows/ml/training_pipeline.py"),
    (batch_inference, {}, "landing/orders/"),  # its bootstrap trains, whose features stop
    (s3_data_pipeline, {}, "landing/<table>/"),
]


def lake_tables() -> list[str]:
    return [table.path for table in physical_tables() if lake.exists(table)]


@pytest.fixture
def empty_s3_lake(s3_lake, prefect_api, monkeypatch):
    monkeypatch.setenv("LAKE_SAMPLE_DATA", "off")
    monkeypatch.delenv("PREFECT__RUNTIME__DEPLOYMENT__ID", raising=False)
    assert lake_tables() == []
    return s3_lake


@pytest.mark.parametrize(
    ("flow", "parameters", "producer"),
    STOPPING,
    ids=[f"{f.name}{sorted(p)}" for f, p, _ in STOPPING],
)
def test_a_missing_input_stops_the_flow_by_hand_it_fails_scheduled_it_completes(
    empty_s3_lake, monkeypatch, flow, parameters, producer
):
    by_hand = flow(**parameters, return_state=True)
    assert by_hand.is_failed(), by_hand
    assert "MissingInputError" in by_hand.message
    assert producer in by_hand.message

    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "a-deployment")
    scheduled = flow(**parameters, return_state=True)
    assert scheduled.is_completed(), scheduled
    assert producer in scheduled.message
    assert "Error" not in scheduled.message
    assert lake_tables() == [], "a stopped run wrote nothing"


def test_api_ingest_without_a_url_fails_with_the_reason_and_serves_no_sample(empty_s3_lake):
    state = api_ingest(return_state=True)
    assert state.is_failed()
    assert "no API URL configured" in state.message
    assert "sample data is off" in state.message
    assert lake_tables() == []


def test_table_maintenance_on_an_empty_lake_maintains_nothing_and_invents_nothing(empty_s3_lake):
    assert table_maintenance() == []
    assert lake_tables() == []


def test_the_setting_on_fills_only_the_missing_input_and_the_flow_runs(empty_s3_lake, monkeypatch):
    monkeypatch.setenv("LAKE_SAMPLE_DATA", "on")
    summary = realtime_analytics(sample_rows=500)
    assert summary["new_events"] == 500
    assert "silver/events" in lake_tables()


def test_no_deployment_fills_a_production_table_with_sample_data():
    for entry in PREFECT_YAML["deployments"]:
        flow_file, name = entry["entrypoint"].split(":")
        module = importlib.import_module(flow_file.removesuffix(".py").replace("/", "."))
        function = getattr(module, name).fn
        if "sample_data" in inspect.signature(function).parameters:
            assert entry.get("parameters", {}).get("sample_data") is False, entry["name"]
        elif not flow_file.startswith("flows/examples/"):  # examples: tables of their own
            assert "samples" not in function.__globals__, f"{entry['name']} has sample data"
    assert all(t.name.startswith("example_") for t in examples.TABLES)
    api = next(e for e in PREFECT_YAML["deployments"] if e["name"] == "api-ingest")
    assert "url" in api.get("parameters", {}) or not any(
        schedule.get("active", True) for schedule in api["schedules"]
    )
