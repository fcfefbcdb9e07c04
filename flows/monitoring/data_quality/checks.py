"""The data quality monitor's checks: freshness, volume and drift from the Delta log, a sample.

Freshness and volume look only at commits that bring data (WRITE, MERGE), so maintenance commits
(OPTIMIZE, VACUUM) never make a stale table look fresh or a quiet day look like a volume drop.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow as pa

from flows.core.contracts import Table
from flows.core.quality import CheckResult
from flows.core.quarantine import RejectCounts
from flows.core.stats import robust_z_of

DATA_OPERATIONS = frozenset({"WRITE", "MERGE", "STREAMING UPDATE"})


def rows_delivered(commit: Mapping[str, Any]) -> int | None:
    """Rows a data commit brought (added by a write, source rows of a merge); None otherwise."""
    if commit.get("operation") not in DATA_OPERATIONS:
        return None
    metrics = commit.get("operationMetrics") or {}
    for name in ("num_added_rows", "num_source_rows"):
        if name in metrics:
            return int(metrics[name])
    return None


def data_commits(history: Iterable[Mapping[str, Any]]) -> list[tuple[datetime, int]]:
    """(commit time, rows delivered) of each data commit, newest first as the log lists them."""
    found = []
    for commit in history:
        rows = rows_delivered(commit)
        if rows is not None:
            found.append((datetime.fromtimestamp(commit["timestamp"] / 1000, UTC), rows))
    return found


def freshness_result(
    table: Table, commits: Sequence[tuple[datetime, int]], now: datetime
) -> CheckResult | None:
    """Age of the newest data commit against the table's SLA; None when it declares none."""
    if table.freshness_hours is None:
        return None
    expected = f"newest data commit at most {table.freshness_hours:g} h old"
    if not commits:
        return CheckResult(
            table.path, "freshness", None, "critical", False, "no data commit", expected
        )
    age_hours = (now - commits[0][0]).total_seconds() / 3600
    return CheckResult(
        table.path,
        "freshness",
        None,
        "critical",
        age_hours <= table.freshness_hours,
        observed=f"{age_hours:.2f} h (last data commit {commits[0][0].isoformat()})",
        expected=expected,
    )


def volume_result(
    table: Table,
    commits: Sequence[tuple[datetime, int]],
    *,
    window: int = 20,
    min_history: int = 5,
    threshold: float = 3.5,
) -> CheckResult:
    """Rows of the newest data commit against the previous `window` ones (robust z-score)."""
    expected = f"|robust z| <= {threshold:g} against the previous {window} data commits"
    if len(commits) - 1 < min_history:
        observed = f"{max(len(commits) - 1, 0)} earlier data commits; need {min_history} to judge"
        return CheckResult(table.path, "volume", None, "warning", True, observed, expected)
    latest = commits[0][1]
    history = [float(rows) for _, rows in commits[1 : window + 1]]
    # A floor of 10% of the median (and 1 row): a perfectly steady history does not turn a tiny
    # wobble into an anomaly.
    z = robust_z_of(latest, history, scale_floor=max(0.1 * abs(statistics.median(history)), 1.0))
    direction = "drop" if z < 0 else "spike"
    return CheckResult(
        table.path,
        "volume",
        None,
        "warning",
        abs(z) <= threshold,
        observed=f"{latest} rows in the newest commit, median {statistics.median(history):g}"
        f" (robust z {z:.1f}{', a ' + direction if abs(z) > threshold else ''})",
        expected=expected,
    )


def _normalized(arrow_type: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(arrow_type):
        return pa.string()
    if pa.types.is_large_binary(arrow_type):
        return pa.binary()
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return pa.list_(_normalized(arrow_type.value_type))
    return arrow_type


def schema_drift_results(table: Table, actual: pa.Schema) -> list[CheckResult]:
    """The table's schema in the Delta log against its contract, one result per column."""
    if table.schema is None:
        return []
    found = []
    for field in table.schema:
        if field.name not in actual.names:
            found.append(
                CheckResult(
                    table.path,
                    "schema_drift",
                    field.name,
                    "critical",
                    False,
                    "column missing",
                    str(field.type),
                )
            )
            continue
        observed = actual.field(field.name).type
        same = _normalized(observed) == _normalized(field.type)
        found.append(
            CheckResult(
                table.path,
                "schema_drift",
                field.name,
                "critical",
                same,
                str(observed),
                str(field.type),
            )
        )
    for name in actual.names:
        if name not in table.schema.names:
            found.append(
                CheckResult(
                    table.path,
                    "schema_drift",
                    name,
                    "warning",
                    False,
                    f"column not in the contract ({actual.field(name).type})",
                    "absent",
                )
            )
    return found


@dataclass(frozen=True)
class TableSnapshot:
    """What the monitor reads of one table: a sample, its log and its schema."""

    table: Table
    version: int
    rows_total: int
    sample: pl.DataFrame
    history: list[dict[str, Any]]
    schema: pa.Schema
    rejects: RejectCounts | None = None
    """A quarantine table's rows still wrong and resolved since; None for other layers."""


def sample_step(rows_total: int, max_rows: int) -> int:
    """Keep every n-th row so at most `max_rows` are validated (1 = the whole table)."""
    return max(1, math.ceil(rows_total / max(max_rows, 1)))


def unreadable_result(table: Table, error: Exception) -> CheckResult:
    """A table that cannot be opened (e.g. a damaged Delta log) is a critical finding."""
    return CheckResult(
        table.path,
        "readable",
        None,
        "critical",
        False,
        str(error)[:1000],
        "the table opens and its Delta log replays",
    )


def delta_log_results(
    snapshot: TableSnapshot, *, volume_window: int, now: datetime
) -> list[CheckResult]:
    """Freshness, volume and schema drift of one table, all read from its Delta log."""
    commits = data_commits(snapshot.history)
    freshness = freshness_result(snapshot.table, commits, now)
    return [
        *([freshness] if freshness else []),
        volume_result(snapshot.table, commits, window=volume_window),
        *schema_drift_results(snapshot.table, snapshot.schema),
    ]
