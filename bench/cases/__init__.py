"""The cases of issue 8, in order: each runs in the parent and measures variants in subprocesses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bench.cases import (
    analytics,
    incremental,
    ingest,
    layout,
    maintenance,
    merge,
    prefect_overhead,
    quality,
    scale_out,
)
from bench.harness import Context, Outcome


@dataclass(frozen=True)
class Case:
    """A case from the issue: its target, how to run it at one scale, and at which scales."""

    id: str
    title: str
    target: str
    run: Callable[[Context, int], Outcome]
    at: Literal["each", "smallest", "largest", "once"] = "each"

    def scales(self, ctx: Context) -> list[int]:
        if self.at == "smallest":
            return [min(ctx.scales)]
        if self.at == "largest":
            return [max(ctx.scales)]
        if self.at == "once":
            return [0]
        return list(ctx.scales)


CASES: tuple[Case, ...] = (
    Case(
        "1",
        "Ingest landing CSV → silver (checks, quarantine)",
        "≥ 0.45x raw floor and ≥ 1.0x naive pandas (rows/s)",
        ingest.throughput,
    ),
    Case(
        "2",
        "Memory bound of the streaming ingest",
        "peak RSS at 4x input ≤ 1.2x peak RSS at 1x",
        ingest.memory_bound,
        at="smallest",
    ),
    Case(
        "3",
        "Incremental re-run (no new files, 1% new files)",
        "no-new-data re-run ≤ 1.5 s wall at any size (its ratio to the first run reported)",
        incremental.rerun_cost,
    ),
    Case(
        "4",
        "Enrichment join (events ⋈ 100k products ⋈ 1M customers)",
        "≥ 10M rows/s; ≥ 1.0x DuckDB at 10M rows",
        analytics.enrichment,
    ),
    Case(
        "5",
        "Fraud detection",
        "≥ 40x pandas; ≥ 1M transactions/s where the machine allows (reported either way)",
        analytics.fraud,
    ),
    Case(
        "6",
        "Windowed analytics (5-minute windows, p95/p99, top-N)",
        "≥ 5M events/s; ≥ 1.0x DuckDB at 10M rows",
        analytics.windows,
    ),
    Case(
        "7",
        "GX suite vs compiled row checks",
        "no target in the issue (report the ratio)",
        quality.gx_vs_compiled,
    ),
    Case(
        "8",
        "Prefect overhead (flow vs plain functions; mapped tasks/s)",
        "overhead ≤ 10% of a 10M-row flow's wall time",
        prefect_overhead.overhead,
        at="largest",
    ),
    Case(
        "9",
        "MERGE of 1% updates",
        "no target in the issue (seconds, peak RSS)",
        merge.one_percent_updates,
    ),
    Case(
        "10",
        "Table open time after 1,000 small commits",
        "no target in the issue (before vs after maintenance)",
        maintenance.open_after_small_commits,
        at="once",
    ),
    Case(
        "11",
        "Landing pipeline over many deliveries: threads vs a two-process Dask cluster",
        "no target in the issue (ratio and peak RSS per process)",
        scale_out.threads_vs_dask,
        at="smallest",
    ),
    Case(
        "12",
        "Silver files after 10M rows and compaction",
        "no target in the issue (files, mean size, read seconds before vs after compaction)",
        layout.files_after_compaction,
        at="largest",
    ),
)
