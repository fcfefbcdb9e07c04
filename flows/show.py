"""Look at a lake table: schema, row count, newest commits (with the flow run that wrote each) and
its first rows, on the local lake or S3 alike (`LAKE_URI` picks it).

    python -m flows.show silver/orders
    python -m flows.show quarantine/orders --rows 20 --commits 10
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from flows.catalog import table_at
from flows.core import lake
from flows.core.artifacts import markdown_table
from flows.core.contracts import Table
from flows.core.errors import LakeError


def commit_rows(history: Sequence[dict[str, Any]]) -> list[dict[str, object]]:
    """One line per commit: version, time, operation, rows written and the writing flow run."""
    return [
        {
            "version": commit.get("version"),
            "committed": datetime.fromtimestamp(commit["timestamp"] / 1000, UTC).isoformat(
                timespec="seconds"
            ),
            "operation": commit.get("operation", ""),
            "rows": _rows_written(commit.get("operationMetrics") or {}),
            "flow": commit.get("prefect.flow_name") or "",
            "flow run": commit.get("prefect.flow_run_name")
            or commit.get("prefect.flow_run_id", ""),
        }
        for commit in history
    ]


def _rows_written(metrics: dict[str, Any]) -> object:
    for name in ("num_added_rows", "num_output_rows", "num_target_rows_inserted"):
        if name in metrics:
            return metrics[name]
    return ""


def report(table: Table, *, rows: int, commits: int) -> str:
    """Everything `show` prints about one table, as text."""
    if not lake.exists(table):
        return f"{table.path}: no table at {lake.location(table)} yet"
    scan = lake.scan(table)
    schema = scan.collect_schema()
    total = int(scan.select(pl.len()).collect().item())
    layout = lake.layout(table)
    with pl.Config(tbl_rows=rows, tbl_cols=-1, fmt_str_lengths=40, tbl_width_chars=160):
        head = str(scan.head(rows).collect())
    columns = [{"column": name, "type": str(dtype)} for name, dtype in schema.items()]
    return "\n".join(
        [
            f"{table.path} at {lake.location(table)}",
            f"{total} rows, version {layout.version}, {layout.data_files} data files",
            "",
            markdown_table(columns),
            "",
            "Newest commits:",
            markdown_table(commit_rows(lake.history(table, limit=commits))),
            "",
            f"First {min(rows, total)} rows:",
            head,
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.show", description=__doc__)
    parser.add_argument("table", help="<layer>/<name>, e.g. silver/orders")
    parser.add_argument("--rows", type=int, default=10, help="first rows to print")
    parser.add_argument("--commits", type=int, default=5, help="newest commits to list")
    args = parser.parse_args(argv)
    try:
        print(report(table_at(args.table), rows=args.rows, commits=args.commits))
    except LakeError as error:
        parser.exit(2, f"{error}\n")


if __name__ == "__main__":
    main()
