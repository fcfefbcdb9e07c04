"""Case 11 work: the landing pipeline, through its public flow, on threads or a Dask cluster.

Both variants run `s3_data_pipeline` as a user would, only the task runner differs, so the case
keeps measuring whatever the pipeline does inside. The Dask variant starts a two-process
`LocalCluster` after the scratch lake's settings are in the environment (its workers inherit
them, as a cloud cluster's workers get theirs from the cluster arguments) and reports each
worker process's peak resident set beside this process's.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from bench.worker import peak_rss_kib
from flows.catalog import ORDERS
from flows.core import lake
from flows.core.runners import data_parallel_runner
from flows.core.settings import LakeSettings
from flows.etl.s3_data_pipeline import s3_data_pipeline

DASK_WORKERS = 2


def _landed(runner: TaskRunner[Any]) -> dict[str, Any]:
    started = perf_counter()
    s3_data_pipeline.with_options(task_runner=runner)(sample_data=False)
    seconds = perf_counter() - started
    return {"seconds": seconds, "rows": lake.read(ORDERS, columns=["order_id"]).height}


def on_threads(params: dict[str, Any]) -> dict[str, Any]:
    return _landed(ThreadPoolTaskRunner())


def on_dask(params: dict[str, Any]) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    started = perf_counter()
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=DASK_WORKERS, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        cluster_seconds = perf_counter() - started
        result = _landed(data_parallel_runner(LakeSettings(dask_address=cluster.scheduler_address)))
        worker_peaks_kib = client.run(peak_rss_kib)
    return {
        **result,
        "cluster_start_seconds": round(cluster_seconds, 2),
        "worker_peak_rss_mb": sorted(round(kib / 1024) for kib in worker_peaks_kib.values()),
    }
