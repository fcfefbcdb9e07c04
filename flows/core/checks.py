"""Checks declared on a table contract.

Row checks compile to vectorised Polars expressions (the quarantine split); whole-table checks
(`TableCheck`) are run only by the quality monitor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class NotNull:
    """Each of `columns` must have a value."""

    columns: tuple[str, ...]

    def violations(self) -> list[tuple[pl.Expr, str]]:
        return [(pl.col(column).is_null(), f"{column}: is null") for column in self.columns]


@dataclass(frozen=True)
class Between:
    """`column` lies in [low, high] when it has a value."""

    column: str
    low: float | None
    high: float | None

    def violations(self) -> list[tuple[pl.Expr, str]]:
        column = pl.col(self.column)
        found: list[tuple[pl.Expr, str]] = []
        if self.low is not None:
            found.append((column < self.low, f"{self.column}: below {self.low}"))
        if self.high is not None:
            found.append((column > self.high, f"{self.column}: above {self.high}"))
        return found


@dataclass(frozen=True)
class OneOf:
    """`column` is one of `values` when it has a value."""

    column: str
    values: frozenset[str]

    def violations(self) -> list[tuple[pl.Expr, str]]:
        allowed = sorted(self.values)
        return [
            (
                ~pl.col(self.column).is_in(allowed),
                f"{self.column}: not one of {', '.join(allowed)}",
            )
        ]


@dataclass(frozen=True)
class Matches:
    """`column` matches the regular expression `pattern` when it has a value."""

    column: str
    pattern: str

    def violations(self) -> list[tuple[pl.Expr, str]]:
        return [
            (
                ~pl.col(self.column).str.contains(self.pattern),
                f"{self.column}: does not match {self.pattern}",
            )
        ]


Check = NotNull | Between | OneOf | Matches


@dataclass(frozen=True)
class Unique:
    """No two rows share a value of `column` (a whole-table check: the monitor runs it)."""

    column: str


@dataclass(frozen=True)
class MeanBetween:
    """The mean of `column` over the table lies in [low, high]."""

    column: str
    low: float | None
    high: float | None


@dataclass(frozen=True)
class MedianBetween:
    """The median of `column` over the table lies in [low, high]."""

    column: str
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Contains:
    """Every one of `values` appears at least once in `column`."""

    column: str
    values: frozenset[str]


TableCheck = Unique | MeanBetween | MedianBetween | Contains


def not_null(*columns: str) -> NotNull:
    return NotNull(tuple(columns))


def between(column: str, low: float | None = None, high: float | None = None) -> Between:
    return Between(column, low, high)


def one_of(column: str, values: Iterable[str]) -> OneOf:
    return OneOf(column, frozenset(values))


def matches(column: str, pattern: str) -> Matches:
    return Matches(column, pattern)


def any_violated(violations: Iterable[tuple[pl.Expr, str]]) -> pl.Expr:
    """True where a row violates at least one rule (a rule on a null value is not violated)."""
    conditions = [condition.fill_null(False) for condition, _ in violations]
    return pl.any_horizontal(conditions) if conditions else pl.repeat(False, pl.len())


def reason_expression(violations: Iterable[tuple[pl.Expr, str]]) -> pl.Expr:
    """One string per row joining every violated rule's message with '; ', null when none.

    Builds a string for every row it is given: filter on `any_violated` first.
    """
    parts = [
        pl.when(condition.fill_null(False)).then(pl.lit(message))
        for condition, message in violations
    ]
    if not parts:
        return pl.lit(None, dtype=pl.String)
    joined = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    return pl.when(joined == "").then(None).otherwise(joined)
