"""Undo a bad load: bring a table back to an earlier version (Delta RESTORE), recorded in its
history with who asked and why. Never to a version before the table's last erasure, which would
bring erased rows back.

    python -m flows.restore silver/orders --version 3 --by alice --reason "bad delivery of May 1"

Then, after fixing the contract, `python flows/etl/s3_data_pipeline.py --reconform orders`
conforms the deliveries in bronze again.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import polars as pl

from flows.catalog import ERASURES, table_at
from flows.core import lake
from flows.core.contracts import Table
from flows.core.errors import ConfigurationError, LakeError

RESTORED_BY = "lake.restored_by"
RESTORE_REASON = "lake.restore_reason"


def last_erasure_version(erasures: pl.DataFrame, path: str) -> int | None:
    """The table version the newest erasure of `path` left (rows of `_ops/erasures`)."""
    versions = erasures.filter(pl.col("table") == path)["table_version"].drop_nulls().to_list()
    return max(versions) if versions else None


def restore_problem(current: int, target: int, erased_at: int | None) -> str | None:
    """Why restoring a table at version `current` to `target` is refused, if it is."""
    if not 0 <= target < current:
        return f"version {target} is not an earlier version (the table is at {current})"
    if erased_at is not None and target < erased_at:
        return (
            f"version {target} is older than the erasure recorded at version {erased_at}:"
            " restoring it would bring erased rows back"
        )
    return None


def restore_table(table: Table, *, to_version: int, by: str, reason: str) -> lake.WriteResult:
    """Restore `table` to `to_version` after checking it is allowed."""
    if not lake.exists(table):
        raise ConfigurationError(f"{table.path}: no table at {lake.location(table)}")
    erasures = (
        lake.read(ERASURES, columns=["table", "table_version"], where=pl.col("table") == table.path)
        if lake.exists(ERASURES)
        else pl.DataFrame(schema={"table": pl.String, "table_version": pl.Int64})
    )
    problem = restore_problem(
        lake.version(table), to_version, last_erasure_version(erasures, table.path)
    )
    if problem:
        raise ConfigurationError(f"{table.path}: {problem}")
    return lake.restore(
        table, to_version=to_version, metadata={RESTORED_BY: by, RESTORE_REASON: reason}
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m flows.restore",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("table", help="<layer>/<name>, e.g. silver/orders")
    parser.add_argument("--version", type=int, required=True, help="the version to go back to")
    parser.add_argument("--by", required=True, help="who asks (recorded in the table's history)")
    parser.add_argument("--reason", required=True, help="why (recorded in the table's history)")
    args = parser.parse_args(argv)
    try:
        result = restore_table(table_at(args.table), to_version=args.version, by=args.by,
                               reason=args.reason)  # fmt: skip
    except LakeError as error:
        parser.exit(2, f"{error}\n")
    print(f"{result.table} restored to version {args.version} as version {result.version}")


if __name__ == "__main__":
    main()
