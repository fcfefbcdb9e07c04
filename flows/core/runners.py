"""The task runner of data-parallel flows: a Dask cluster when one is configured, else threads.

A flow whose work splits into independent units (partitions, days, deliveries) maps one task per
unit and takes its runner from here, so one setting moves every such flow onto a cluster. Tasks on
Dask workers read their settings from the workers' environment and commit to Delta themselves;
concurrent commits from several processes stay exact through delta-rs's optimistic concurrency
(conditional put on S3), with conflicts retried by the LAKE_WRITE preset.
"""

from __future__ import annotations

from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.core.errors import ConfigurationError
from flows.core.settings import LakeSettings, get_settings


def data_parallel_runner(settings: LakeSettings | None = None) -> TaskRunner[Any]:
    """prefect-dask's DaskTaskRunner on `LAKE_DASK_ADDRESS`, else on an ephemeral cluster of
    `LAKE_DASK_CLUSTER_CLASS` (with `LAKE_DASK_CLUSTER_KWARGS`), else threads in this process."""
    settings = settings or get_settings()
    if not (settings.dask_address or settings.dask_cluster_class):
        return ThreadPoolTaskRunner()
    from prefect_dask.task_runners import DaskTaskRunner

    runner: TaskRunner[Any]
    if settings.dask_address:
        runner = DaskTaskRunner(address=settings.dask_address)
    else:
        try:
            runner = DaskTaskRunner(
                cluster_class=settings.dask_cluster_class,
                cluster_kwargs=dict(settings.dask_cluster_kwargs),
            )
        except ImportError as error:
            raise ConfigurationError(
                f"LAKE_DASK_CLUSTER_CLASS={settings.dask_cluster_class} cannot be imported"
                f" ({error}): install the package that provides it where flows run, e.g."
                " dask-cloudprovider[aws] for dask_cloudprovider.aws.FargateCluster"
            ) from error
    return runner
