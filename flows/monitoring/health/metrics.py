"""Pipeline health's measures: run statistics per flow, rows written per table, metric rows."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

FINISHED = ("COMPLETED", "FAILED", "CRASHED")
UNKNOWN_FLOW = "(not a Prefect run)"


@dataclass(frozen=True)
class RunRecord:
    """One flow run as the Prefect API reports it."""

    flow_name: str
    run_id: str
    state_type: str
    state_name: str
    expected_start: datetime | None
    start: datetime | None
    duration_seconds: float


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def is_late(run: RunRecord, late_after_seconds: float) -> bool:
    """Marked Late by the scheduler, or started more than `late_after_seconds` after schedule."""
    if run.state_name == "Late":
        return True
    if run.start is None or run.expected_start is None:
        return False
    return (run.start - run.expected_start).total_seconds() > late_after_seconds


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def flow_metrics(runs: Iterable[RunRecord], late_after_seconds: float) -> list[dict[str, Any]]:
    """Per flow: runs, outcomes, success and failure rates (of finished runs), p50/p95, late."""
    by_flow: dict[str, list[RunRecord]] = defaultdict(list)
    for run in runs:
        by_flow[run.flow_name].append(run)
    rows = []
    for name, flow_runs in sorted(by_flow.items()):
        count = {state: sum(r.state_type == state for r in flow_runs) for state in FINISHED}
        finished = sum(count.values())
        durations = [r.duration_seconds for r in flow_runs if r.state_type in FINISHED]
        p50, p95 = percentile(durations, 50), percentile(durations, 95)
        rows.append(
            {
                "flow": name,
                "runs": len(flow_runs),
                "completed": count["COMPLETED"],
                "failed": count["FAILED"],
                "crashed": count["CRASHED"],
                "late": sum(is_late(r, late_after_seconds) for r in flow_runs),
                "success_rate": _rate(count["COMPLETED"], finished),
                "failure_rate": _rate(count["FAILED"] + count["CRASHED"], finished),
                "duration_p50_s": None if p50 is None else round(p50, 3),
                "duration_p95_s": None if p95 is None else round(p95, 3),
            }
        )
    return rows


def rows_written(commit: Mapping[str, Any]) -> int | None:
    """Rows a commit wrote (added, merged in, deleted); None for maintenance commits."""
    metrics = commit.get("operationMetrics") or {}
    operation = commit.get("operation")
    if operation == "WRITE":
        return int(metrics.get("num_added_rows", 0))
    if operation == "MERGE":
        names = ("num_target_rows_inserted", "num_target_rows_updated", "num_target_rows_deleted")
        return sum(int(metrics.get(name, 0)) for name in names)
    if operation == "DELETE":
        return int(metrics.get("num_deleted_rows", 0))
    return None


def table_writes(
    table: str,
    history: Iterable[Mapping[str, Any]],
    since: datetime,
    flow_of_run: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Per writing flow: commits and rows written to `table` since `since`.

    The flow comes from the commit's `prefect.flow_run_id` (looked up in the API's runs), else
    from the flow name the commit carries.
    """
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for commit in history:
        written = rows_written(commit)
        when = datetime.fromtimestamp(commit["timestamp"] / 1000, UTC)
        if written is None or when < since:
            continue
        run_id = str(commit.get("prefect.flow_run_id", ""))
        flow = flow_of_run.get(run_id) or str(commit.get("prefect.flow_name") or UNKNOWN_FLOW)
        totals[flow][0] += 1
        totals[flow][1] += written
    return [
        {"table": table, "flow": flow, "commits": commits, "rows_written": rows}
        for flow, (commits, rows) in sorted(totals.items())
    ]


def metric_rows(
    flows: Sequence[Mapping[str, Any]],
    writes: Sequence[Mapping[str, Any]],
    *,
    run_id: str,
    measured_at: datetime,
    window_hours: float,
) -> list[dict[str, Any]]:
    """Long-format rows for _ops/pipeline_metrics: one per (subject, metric)."""
    base = {"run_id": run_id, "measured_at": measured_at, "window_hours": float(window_hours)}
    rows = [
        {
            **base,
            "kind": "flow",
            "subject": row["flow"],
            "flow_name": row["flow"],
            "metric": metric,
            "value": None if value is None else float(value),
        }
        for row in flows
        for metric, value in row.items()
        if metric != "flow"
    ]
    rows += [
        {
            **base,
            "kind": "table",
            "subject": row["table"],
            "flow_name": row["flow"],
            "metric": metric,
            "value": float(row[metric]),
        }
        for row in writes
        for metric in ("commits", "rows_written")
    ]
    return rows


def cloudwatch_metric_data(
    runs: Iterable[RunRecord], finished_after: datetime
) -> list[dict[str, Any]]:
    """CloudWatch datapoints of the runs that finished after `finished_after`, at their end:
    `FailedRuns` (1 for a failed or crashed run, else 0) and `DurationSeconds`, per flow.

    Each run is published once when the window is the time since the previous measurement.
    """
    data = []
    for run in runs:
        if run.state_type not in FINISHED or run.start is None:
            continue
        ended = run.start + timedelta(seconds=run.duration_seconds)
        if ended <= finished_after:
            continue
        dimensions = [{"Name": "Flow", "Value": run.flow_name}]
        failed = run.state_type in ("FAILED", "CRASHED")
        data += [
            {"MetricName": "FailedRuns", "Dimensions": dimensions, "Timestamp": ended,
             "Value": float(failed), "Unit": "Count"},
            {"MetricName": "DurationSeconds", "Dimensions": dimensions, "Timestamp": ended,
             "Value": round(run.duration_seconds, 3), "Unit": "Seconds"},
        ]  # fmt: skip
    return data
