"""The Data Quality Monitor flow: read each table, check it, record and publish the results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from flows.catalog import QUALITY_RESULTS, selected_tables
from flows.core import lake, storage
from flows.core.artifacts import publish_link, publish_markdown, publish_table
from flows.core.cli import cli
from flows.core.contracts import Table
from flows.core.errors import LakeError
from flows.core.lineage import current_run
from flows.core.paths import lake_location
from flows.core.quality import CheckResult, QualityContext
from flows.core.quarantine import reject_counts
from flows.core.settings import get_settings
from flows.core.tasks import LAKE_READ, LAKE_WRITE, existing_tables
from flows.monitoring.automations import QUALITY_EVENT
from flows.monitoring.data_quality import checks, report

DOCS_PREFIX = "_ops/data_docs"


class CriticalQualityFailure(LakeError):
    """A critical quality check failed; the run fails so alerting can hang on it."""


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_snapshot(table: Table, max_rows: int, history_limit: int) -> checks.TableSnapshot:
    """A systematic sample (every n-th row), the recent log and the schema of one table."""
    delta = lake.open_table(table)
    scan = lake.scan(table)
    rows_total = int(scan.select(pl.len()).collect().item())
    step = checks.sample_step(rows_total, max_rows)
    sample = (scan.gather_every(step) if step > 1 else scan).collect()
    return checks.TableSnapshot(
        table=table,
        version=int(delta.version()),
        rows_total=rows_total,
        sample=sample,
        history=lake.history(table, limit=history_limit),
        schema=pa.schema(delta.schema().to_arrow()),
        rejects=reject_counts(scan) if table.layer == "quarantine" else None,
    )


@task(cache_policy=NO_CACHE)
def check_table(
    quality: QualityContext, snapshot: checks.TableSnapshot, volume_window: int, now: datetime
) -> list[CheckResult]:
    """GX suite through a checkpoint, then freshness, volume and drift from the Delta log."""
    return [
        *quality.validate(snapshot.table, snapshot.sample),
        *checks.delta_log_results(snapshot, volume_window=volume_window, now=now),
    ]


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def record_results(rows: list[dict[str, Any]], run_id: str) -> lake.WriteResult:
    """Append this run's results; a retry of the same run replaces its own rows."""
    data = pa.Table.from_pylist(rows, schema=QUALITY_RESULTS.schema)
    return lake.replace_where(QUALITY_RESULTS, data, where={"run_id": run_id})


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def publish_data_docs(folder: Path) -> str:
    """Replace the site under <lake>/_ops/data_docs/ with this run's; returns the index's location.

    New pages are written before the previous run's are deleted, so the index never dangles.
    """
    written = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        written.append(f"{DOCS_PREFIX}/{path.relative_to(folder).as_posix()}")
        storage.write_bytes(written[-1], path.read_bytes())
    storage.delete_objects(sorted(set(storage.list_objects(DOCS_PREFIX)) - set(written)))
    index = lake_location(f"{DOCS_PREFIX}/index.html")
    return index if get_settings().is_s3 else Path(index).as_uri()


@task
def emit_failure_events(summary: list[dict[str, Any]], results: list[CheckResult]) -> int:
    """One `lake.quality.failed` event per table with a failed check; returns how many."""
    events = report.failure_events(summary, results)
    for resource, payload in events:
        emit_event(event=QUALITY_EVENT, resource=resource, payload=payload)
    return len(events)


@flow(
    name="Data Quality Monitor",
    description="GX suites from the table contracts, freshness, volume and schema drift for every"
    " catalog table; results to _ops/quality_results, Data Docs beside the lake.",
)
def data_quality_monitor(
    tables: Annotated[list[str] | None, cli("--table")] = None,
    max_rows: int = 200_000,
    volume_window: int = 20,
    history_limit: int = 100,
    fail_on_critical: Annotated[bool, cli("--fail")] = True,
) -> list[dict[str, Any]]:
    """Check each existing table, record and publish the results; returns the summary rows.

    Args:
        tables: only these catalog tables, such as silver/orders; default: all.
        max_rows: validate at most this many rows per table (a systematic sample).
        volume_window: earlier data commits the volume check compares against.
        history_limit: Delta log entries read per table for freshness and volume.
        fail_on_critical: fail the run on a critical finding (otherwise only record it).
    """
    logger = get_run_logger()
    wanted = selected_tables(tables)
    present = existing_tables(wanted)
    absent = [table.path for table in wanted if table not in present]
    if not present:
        message = report.nothing_to_check(get_settings().root)
        logger.warning(message)
        publish_markdown(
            "data-quality-summary", f"# Data quality\n\n{message}", description="Nothing to check"
        )
        return []

    if absent:
        logger.info("Not in the lake (not checked): %s", ", ".join(absent))
    run_id, now = current_run().id, datetime.now(UTC)
    quality = QualityContext()
    try:
        rows: list[dict[str, Any]] = []
        summary: list[dict[str, Any]] = []
        results: list[CheckResult] = []
        for table in present:
            snapshot: checks.TableSnapshot | None = None
            try:
                snapshot = read_snapshot(table, max_rows, history_limit)
            except LakeError as error:
                checked = [checks.unreadable_result(table, error)]
            else:
                checked = check_table(quality, snapshot, volume_window, now)
            rows += report.result_rows(checked, snapshot, run_id, now)
            summary.append(report.summary_row(table, snapshot, checked))
            results += checked
            logger.info(
                "%s: %s, health %s", table.path, summary[-1]["status"], summary[-1]["health_score"]
            )
        record_results(rows, run_id)
        docs = publish_data_docs(quality.build_docs())
    finally:
        quality.close()

    publish_table(
        "data-quality-summary",
        summary,
        description=f"Health score {report.overall_health(summary)} over {len(summary)} tables",
    )
    publish_markdown(
        "data-quality-failures",
        report.failures_markdown(results, absent),
        description="Every failed check of this run",
    )
    publish_link("data-quality-docs", docs, description="Great Expectations Data Docs")
    emit_failure_events(summary, results)
    critical = [r for r in summary if r["status"] == "critical"]
    if critical and fail_on_critical:
        raise CriticalQualityFailure(
            f"critical quality failures in {[r['table'] for r in critical]}; see the"
            f" data-quality-failures artifact and {docs}"
        )
    return summary
