"""Case 11: the landing pipeline over many deliveries on threads vs a two-process Dask cluster."""

from __future__ import annotations

from bench.cases.ingest import landing
from bench.harness import Context, Outcome

THREADS = "bench.variants.scale_out:on_threads"
DASK = "bench.variants.scale_out:on_dask"
DELIVERIES = 16
QUICK_DELIVERIES = 4
"""Enough to spread over two workers in the smoke test, few enough to keep it short."""


def threads_vs_dask(ctx: Context, scale: int) -> Outcome:
    """`scale` orders in DELIVERIES files through the pipeline's flow, once per task runner."""
    deliveries = QUICK_DELIVERIES if ctx.quick else DELIVERIES
    files = landing(ctx, scale, rows_per_file=max(scale // deliveries, 1))
    env = ctx.prefect_env()
    threads = ctx.measure(
        "threads", f"landing pipeline, {deliveries} deliveries, threads", THREADS, {},
        lake_from=files, env=env,
    )  # fmt: skip
    dask = ctx.measure(
        "dask", f"landing pipeline, {deliveries} deliveries, 2-process Dask", DASK, {},
        lake_from=files, env=env,
    )  # fmt: skip
    workers = dask.extra["worker_peak_rss_mb"]
    return Outcome(
        summary=(
            f"threads {threads.seconds:.1f} s vs Dask {dask.seconds:.1f} s"
            f" (+{dask.extra['cluster_start_seconds']:.1f} s cluster start); peak RSS"
            f" {threads.peak_rss_mb:,.0f} MB in one process vs {dask.peak_rss_mb:,.0f} MB"
            f" (flow) + {' + '.join(f'{mb:,} MB' for mb in workers)} (workers)"
        ),
        measurements=[threads, dask],
        ratios={
            "Dask time / threads time": dask.seconds / threads.seconds,
            "largest Dask process peak / threads peak": max(dask.peak_rss_mb, *workers)
            / threads.peak_rss_mb,
        },
        note="no target: this machine has 2 cores, so two worker processes add no cores;"
        " the case shows the cost of shipping deliveries to processes and the per-process peak",
    )
