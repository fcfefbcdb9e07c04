"""The Pipeline Health flow: runs from the Prefect API and commits from the Delta logs, recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
)
from prefect.client.schemas.objects import FlowRun

from flows.catalog import PIPELINE_METRICS, physical_tables
from flows.core import lake
from flows.core.artifacts import publish_markdown, publish_table
from flows.core.lineage import current_run
from flows.core.quarantine import reject_counts
from flows.core.settings import boto3_session, get_settings
from flows.core.tasks import EXTERNAL_SOURCE, LAKE_READ, LAKE_WRITE
from flows.monitoring.health.metrics import (
    RunRecord,
    cloudwatch_metric_data,
    flow_metrics,
    metric_rows,
    table_writes,
)
from flows.monitoring.health.report import health_markdown

PAGE = 200
PUBLISH_WINDOW = timedelta(hours=1)
"""Runs that finished this long ago or less go to CloudWatch: the deployment runs hourly."""
PUT_LIMIT = 1000
"""Datapoints per PutMetricData request (the API's limit)."""


@task(**EXTERNAL_SOURCE)
def read_flow_runs(since: datetime) -> list[RunRecord]:
    """Every flow run expected to start since `since`, with its flow's name."""
    with get_client(sync_client=True) as client:
        runs: list[FlowRun] = []
        window = FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since))
        while page := client.read_flow_runs(flow_run_filter=window, limit=PAGE, offset=len(runs)):
            runs += page
        flow_ids = list({run.flow_id for run in runs})
        flows = client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)))
        names = {f.id: f.name for f in flows}
    return [
        RunRecord(
            flow_name=names.get(run.flow_id, str(run.flow_id)),
            run_id=str(run.id),
            state_type=run.state_type.value if run.state_type else "UNKNOWN",
            state_name=run.state_name or "",
            expected_start=run.expected_start_time,
            start=run.start_time,
            duration_seconds=run.total_run_time.total_seconds(),
        )
        for run in runs
    ]


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_histories(history_limit: int) -> dict[str, list[dict[str, Any]]]:
    """The recent Delta log of every physical table in the lake."""
    return {
        table.path: lake.history(table, limit=history_limit)
        for table in physical_tables()
        if lake.exists(table)
    }


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_rejects() -> list[dict[str, Any]]:
    """Rows still wrong and resolved since in every quarantine table in the lake."""
    counts = {
        table.path: reject_counts(lake.scan(table))
        for table in physical_tables()
        if table.layer == "quarantine" and lake.exists(table)
    }
    return [
        {"table": path, "open_rejects": c.open, "resolved_rejects": c.resolved}
        for path, c in counts.items()
    ]


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def record_metrics(rows: list[dict[str, Any]], run_id: str) -> lake.WriteResult:
    """Append this measurement; a retry of the same run replaces its own rows."""
    data = pa.Table.from_pylist(rows, schema=PIPELINE_METRICS.schema)
    return lake.replace_where(PIPELINE_METRICS, data, where={"run_id": run_id})


@task(**EXTERNAL_SOURCE, cache_policy=NO_CACHE)
def put_cloudwatch_metrics(namespace: str, data: list[dict[str, Any]]) -> int:
    """Put the datapoints in `namespace`, in requests of at most PUT_LIMIT; how many were put."""
    client = boto3_session(get_settings()).client("cloudwatch")
    for start in range(0, len(data), PUT_LIMIT):
        client.put_metric_data(Namespace=namespace, MetricData=data[start : start + PUT_LIMIT])
    return len(data)


@flow(
    name="Pipeline Health",
    description="Runs, success/failure rates, p50/p95 durations and late runs per flow from the"
    " Prefect API; rows written per table from the Delta log; to _ops/pipeline_metrics.",
)
def pipeline_health(
    hours: float = 24, late_after_seconds: float = 60, history_limit: int = 200
) -> dict[str, list[dict[str, Any]]]:
    """Measure the last `hours`; returns the per-flow, per-table and per-quarantine rows.

    Args:
        hours: the window to measure.
        late_after_seconds: a run that started this much after its schedule counts as late.
        history_limit: Delta log entries read per table.
    """
    logger = get_run_logger()
    now = datetime.now(UTC)
    since = now - timedelta(hours=hours)
    runs = read_flow_runs(since)
    flows = flow_metrics(runs, late_after_seconds)
    flow_of_run = {run.run_id: run.flow_name for run in runs}
    writes = [
        row
        for path, history in read_histories(history_limit).items()
        for row in table_writes(path, history, since, flow_of_run)
    ]
    rejects = read_rejects()
    rows = metric_rows(flows, writes, run_id=current_run().id, measured_at=now, window_hours=hours)
    if rows:
        record_metrics(rows, current_run().id)
    namespace = get_settings().cloudwatch_namespace
    if namespace:
        published = put_cloudwatch_metrics(
            namespace, cloudwatch_metric_data(runs, now - PUBLISH_WINDOW)
        )
        logger.info("%d datapoints put in CloudWatch namespace %s", published, namespace)
    publish_table("pipeline-health-flows", flows, description=f"Flow runs, last {hours:g} h")
    publish_markdown(
        "pipeline-health",
        health_markdown(flows, writes, hours, rejects),
        description=f"Pipeline health, last {hours:g} h",
    )
    logger.info(
        "%d flow runs of %d flows, %d table writers in the last %g h",
        len(runs),
        len(flows),
        len(writes),
        hours,
    )
    return {"flows": flows, "tables": writes, "rejects": rejects}
