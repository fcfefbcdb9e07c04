"""Realtime analytics' report: what a micro-batch read and recomputed, the latest top products."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from flows.core.artifacts import markdown_table


def summary_markdown(summary: Mapping[str, Any], top: pl.DataFrame, *, source: str) -> str:
    """The micro-batch's summary, then the top products of the latest window."""
    return (
        f"# Micro-batch over {source} versions"
        f" {summary['from_version'] + 1}..{summary['to_version']}\n\n"
        + markdown_table([summary])
        + "\n\n## Top products, latest window\n\n"
        + markdown_table(top.filter(pl.col("window_start") == top["window_start"].max()))
    )
