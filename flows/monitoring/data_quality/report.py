"""The data quality monitor's scores and reports: health, result rows, failures, alert events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from flows.core.artifacts import markdown_table
from flows.core.contracts import Table
from flows.core.quality import CheckResult, Severity
from flows.monitoring.data_quality.checks import TableSnapshot

SEVERITY_WEIGHT: Mapping[Severity, int] = {"critical": 5, "warning": 1}


def health_score(results: Iterable[CheckResult]) -> float:
    """100 when every check passes; each failure costs its weight (critical 5, warning 1)."""
    total = failed = 0
    for result in results:
        weight = SEVERITY_WEIGHT[result.severity]
        total += weight
        failed += 0 if result.success else weight
    return 100.0 if total == 0 else round(100.0 * (1 - failed / total), 1)


def status(results: Iterable[CheckResult]) -> str:
    """`critical` if any critical check failed, else `warning` if any failed, else `ok`."""
    failures = {r.severity for r in results if not r.success}
    return "critical" if "critical" in failures else "warning" if failures else "ok"


def result_rows(
    results: list[CheckResult], snapshot: TableSnapshot | None, run_id: str, checked_at: datetime
) -> list[dict[str, Any]]:
    """Rows for _ops/quality_results."""
    return [
        {
            **asdict(result),
            "run_id": run_id,
            "checked_at": checked_at,
            "table_version": snapshot.version if snapshot else None,
            "rows_checked": snapshot.sample.height if snapshot else None,
            "rows_total": snapshot.rows_total if snapshot else None,
        }
        for result in results
    ]


def summary_row(
    table: Table, snapshot: TableSnapshot | None, results: list[CheckResult]
) -> dict[str, Any]:
    """One table's line of the summary artifact."""
    failed = [r for r in results if not r.success]
    return {
        "table": table.path,
        "status": status(results),
        "health_score": health_score(results),
        "checks": len(results),
        "failed_critical": sum(r.severity == "critical" for r in failed),
        "failed_warning": sum(r.severity == "warning" for r in failed),
        "version": snapshot.version if snapshot else None,
        "rows_total": snapshot.rows_total if snapshot else None,
        "rows_checked": snapshot.sample.height if snapshot else None,
        "open_rejects": snapshot.rejects.open if snapshot and snapshot.rejects else None,
        "resolved_rejects": snapshot.rejects.resolved if snapshot and snapshot.rejects else None,
    }


def failures_markdown(results: list[CheckResult], absent: list[str]) -> str:
    """The failed checks as a table, and the catalog tables the lake does not hold (yet)."""
    failed = [r for r in results if not r.success]
    rows = [
        {
            "table": r.table,
            "check": r.check,
            "column": r.column or "",
            "severity": r.severity,
            "observed": r.observed[:120],
            "expected": r.expected[:80],
        }
        for r in failed
    ]
    missing = ", ".join(f"`{path}`" for path in absent) or "none"
    return (
        f"## Failed checks: {len(failed)}\n\n{markdown_table(rows)}\n\n"
        f"Catalog tables not in the lake (not checked): {missing}"
    )


def overall_health(summary: Sequence[Mapping[str, Any]]) -> float:
    """The mean health score of the checked tables."""
    return round(sum(float(row["health_score"]) for row in summary) / len(summary), 1)


def failure_events(
    summary: Iterable[Mapping[str, Any]], results: Sequence[CheckResult]
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(resource, payload) of the alert event for each table with a failed check."""
    events = []
    for row in summary:
        failed = [r for r in results if r.table == row["table"] and not r.success]
        if not failed:
            continue
        resource = {
            "prefect.resource.id": f"lake.table.{row['table']}",
            "prefect.resource.name": row["table"],
            "lake.severity": row["status"],
        }
        payload = {
            "health_score": row["health_score"],
            "failed_checks": [
                f"{r.severity}: {r.check} {r.column or ''}".strip() for r in failed[:20]
            ],
        }
        events.append((resource, payload))
    return events


def nothing_to_check(lake_root: str) -> str:
    """What an empty lake is told, and how to fill it."""
    return (
        f"The lake at {lake_root} holds none of the catalog's tables yet: nothing"
        " to check. Run a flow that writes some first, e.g."
        " `python flows/examples/basic_etl_pipeline.py`."
    )
