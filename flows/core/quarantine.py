"""What a quarantine row says besides its reason: whether it is still wrong.

A rejected row is resolved when its key later lands valid in silver (a later delivery, or a replay
of its own delivery after a contract fix): it then carries the delivery that fixed it and when.
Quarantine tables written before these columns existed lack them; every row there is open.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

RESOLVED_BY_COLUMN = "_resolved_by"
RESOLVED_AT_COLUMN = "_resolved_at"


@dataclass(frozen=True)
class RejectCounts:
    """Rows of a quarantine table still wrong (`open`) and fixed since (`resolved`)."""

    open: int
    resolved: int


def is_open(columns: list[str]) -> pl.Expr:
    """True for a quarantine row no later delivery has fixed (all rows of an older table)."""
    if RESOLVED_AT_COLUMN not in columns:
        return pl.lit(True)
    return pl.col(RESOLVED_AT_COLUMN).is_null()


def reject_counts(quarantine: pl.LazyFrame) -> RejectCounts:
    """Open and resolved rows of a quarantine table."""
    rows = int(quarantine.select(pl.len()).collect().item())
    if RESOLVED_AT_COLUMN not in quarantine.collect_schema().names():
        return RejectCounts(open=rows, resolved=0)
    resolved = quarantine.select(pl.col(RESOLVED_AT_COLUMN).is_not_null().sum()).collect().item()
    return RejectCounts(open=rows - int(resolved), resolved=int(resolved))
