"""Publish run results as Prefect artifacts (keyed, so they appear on the UI's Artifacts page)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, TypeAlias, cast
from uuid import UUID

import polars as pl
import pyarrow as pa
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from flows.core.contracts import personal_columns

Rows: TypeAlias = "Iterable[Mapping[str, Any]] | pa.Table | pl.DataFrame"


def artifact_key(*parts: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def json_rows(rows: Rows) -> list[dict[str, Any]]:
    """Rows with JSON-friendly values (dates and times as ISO strings, floats rounded).

    Columns a table contract declares personal are left out: an artifact never shows them.
    """
    if isinstance(rows, pl.DataFrame):
        rows = rows.to_arrow()
    records = rows.to_pylist() if isinstance(rows, pa.Table) else [dict(row) for row in rows]
    hidden = personal_columns()
    return [
        {name: _json_value(value) for name, value in row.items() if name not in hidden}
        for row in records
    ]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, UUID):
        return str(value)
    return value


def publish_table(key: str, rows: Rows, description: str) -> None:
    create_table_artifact(table=json_rows(rows), key=artifact_key(key), description=description)


def publish_markdown(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(markdown=markdown, key=artifact_key(key), description=description)


def publish_link(key: str, link: str, description: str) -> None:
    create_link_artifact(link=link, key=artifact_key(key), description=description)


def markdown_table(rows: Rows) -> str:
    """A GitHub-flavoured markdown table, for reports that mix prose and numbers."""
    records = json_rows(rows)
    if not records:
        return "_no rows_"
    header = list(records[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in header) + " |" for r in records]
    return "\n".join(lines)


class Progress:
    """A progress artifact advanced as work units (files, batches) finish."""

    def __init__(self, key: str, total: int, description: str) -> None:
        self._total = max(total, 1)
        self._done = 0
        created = create_progress_artifact(
            progress=0.0, key=artifact_key(key), description=description
        )
        self._id = cast(UUID, created)  # sync call outside an event loop returns the id

    def advance(self, units: int = 1) -> None:
        self._done = min(self._done + units, self._total)
        update_progress_artifact(self._id, progress=100.0 * self._done / self._total)
