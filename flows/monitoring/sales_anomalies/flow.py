"""The Sales Anomaly Report flow: analyse the orders, ask a person, publish only if approved."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated, Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

from flows import samples
from flows.catalog import ORDERS, SALES_ANOMALIES
from flows.core import lake
from flows.core.artifacts import publish_markdown
from flows.core.cli import cli
from flows.core.inputs import provide_inputs, stop
from flows.core.lineage import fingerprint
from flows.core.tasks import LAKE_READ, LAKE_WRITE
from flows.monitoring.sales_anomalies.approval import Approval, approval_instructions
from flows.monitoring.sales_anomalies.transforms import (
    anomaly_report,
    daily_sales,
    outlier_orders,
    report_markdown,
    suspicious_days,
)

POLL_SECONDS = 2


def _api_url() -> str:
    """The API this run talks to (on a zero-config run, Prefect's temporary server)."""
    context = FlowRunContext.get()
    return str(context.client.api_url if context else PREFECT_API_URL.value()).rstrip("/")


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_orders() -> tuple[pl.DataFrame, int]:
    """The orders (one snapshot) and the Delta version they were read at."""
    version = lake.version(ORDERS)
    columns = ["order_id", "order_date", "amount", "status"]
    return lake.read(ORDERS, columns=columns, version=version), version


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def publish_report(report: pl.DataFrame, report_id: str) -> lake.WriteResult:
    """Write the approved report; re-publishing the same report replaces its rows."""
    return lake.replace_where(SALES_ANOMALIES, report, where={"report_id": report_id})


@flow(
    name="Sales Anomaly Report",
    description="Outlier orders and suspicious days (median/MAD) from silver/orders; published"
    " to gold/sales_anomalies only after a person approves the report.",
)
def sales_anomaly_report(
    z_threshold: float = 3.5,
    approval_timeout_seconds: Annotated[int, cli("--approval-timeout")] = 120,
    auto_approve: bool | None = None,
    sample_data: bool | None = None,
    sample_rows: int = 10_000,
) -> dict[str, Any] | State[Any]:
    """Analyse, publish the report as an artifact, wait for approval, publish to gold.

    Args:
        z_threshold: the robust z-score above which an order or a day is reported.
        approval_timeout_seconds: how long to wait for an approval before failing the run.
        auto_approve: publish without asking; default: yes with Prefect's temporary server (it
            has no UI to approve in), no when PREFECT_API_URL names a server.
        sample_data: fill a missing input with sample rows; default: the LAKE_SAMPLE_DATA
            setting (on for a local lake, off on S3 and in deployment runs).
        sample_rows: sample orders written if silver/orders does not exist.
    """
    logger = get_run_logger()
    if auto_approve is None:
        auto_approve = not os.environ.get("PREFECT_API_URL")
    reason = provide_inputs([(ORDERS, lambda: samples.orders(sample_rows))], sample_data)
    if reason:
        return stop(reason)
    orders, version = read_orders()
    outliers = outlier_orders(orders, threshold=z_threshold)
    days = suspicious_days(daily_sales(orders), threshold=z_threshold)
    report_id = fingerprint(ORDERS.path, str(version), str(z_threshold))
    publish_markdown(
        "sales-anomaly-report",
        report_markdown(
            outliers, days, orders=orders.height, report_id=report_id, threshold=z_threshold
        ),
        description=f"Report {report_id} on {ORDERS.path} version {version}, for approval",
    )
    summary: dict[str, Any] = {
        "report_id": report_id,
        "orders_version": version,
        "outlier_orders": outliers.height,
        "suspicious_days": days.height,
    }
    logger.info("Report %s: %s", report_id, summary)

    if auto_approve:
        decision = Approval(approve=True, comment="auto-approved (--auto-approve)")
    else:
        logger.info(
            approval_instructions(
                str(flow_run.id),
                ui_url=PREFECT_UI_URL.value(),
                api_url=_api_url(),
                timeout_seconds=approval_timeout_seconds,
            )
        )
        try:
            decision = pause_flow_run(
                wait_for_input=Approval,
                timeout=approval_timeout_seconds,
                poll_interval=POLL_SECONDS,
            )
        except FlowPauseTimeout as error:
            raise FlowPauseTimeout(
                f"Report {report_id} was not approved within {approval_timeout_seconds} s: nothing"
                " was published. Answer sooner (see the log line above) or use --auto-approve."
            ) from error

    if not decision.approve:
        logger.warning("Report %s rejected (%s): not published", report_id, decision.comment)
        return {**summary, "decision": "rejected", "published": 0}
    report = anomaly_report(
        outliers,
        days,
        report_id=report_id,
        orders_version=version,
        approval_comment=decision.comment,
        published_at=datetime.now(UTC),
    )
    written = publish_report(report, report_id)
    logger.info(
        "Report %s approved (%s): %d rows in %s",
        report_id,
        decision.comment,
        written.rows,
        SALES_ANOMALIES.path,
    )
    return {**summary, "decision": "approved", "published": written.rows}
