"""Case 10 work: open and read a table of many small commits, before and after maintenance."""

from __future__ import annotations

import statistics
from pathlib import Path
from time import perf_counter
from typing import Any

from flows.catalog import EVENTS
from flows.core import lake
from flows.monitoring.table_maintenance import maintain

OPENS = 5
RETENTION_HOURS = 168
"""The maintenance flow's default vacuum retention."""


def _open_and_read() -> dict[str, Any]:
    opens = []
    for _ in range(OPENS):
        started = perf_counter()
        lake.open_table(EVENTS)
        opens.append(perf_counter() - started)
    started = perf_counter()
    rows = lake.read(EVENTS).height
    read_seconds = perf_counter() - started
    layout = lake.layout(EVENTS)
    return {
        "seconds": statistics.median(opens),
        "rows": 0,
        "table_rows": rows,
        "read_seconds": read_seconds,
        "data_files": layout.data_files,
        "commits_to_replay": layout.commits_to_replay,
    }


def before(params: dict[str, Any]) -> dict[str, Any]:
    """The table as the small appends left it (delta-rs checkpoints every 100 commits itself)."""
    return _open_and_read()


def replay(params: dict[str, Any]) -> dict[str, Any]:
    """The same table with its checkpoints deleted: opening it replays every commit."""
    log = Path(lake.location(EVENTS)) / "_delta_log"
    for checkpoint in [*log.glob("*.checkpoint*.parquet"), log / "_last_checkpoint"]:
        checkpoint.unlink(missing_ok=True)
    return _open_and_read()


def after(params: dict[str, Any]) -> dict[str, Any]:
    """After the table_maintenance flow's step: compact, checkpoint, expire log, vacuum."""
    started = perf_counter()
    maintain.fn(EVENTS, RETENTION_HOURS, True, [])
    return {**_open_and_read(), "maintenance_seconds": perf_counter() - started}
