"""The data-parallel flows on a real two-process Dask cluster, against moto S3: each flow's table
equals, row for row, the one its single-process (threads) run writes from the same input, and its
commits come from both worker processes.

One cluster serves the module. Its workers read the lake's location from the environment they
were started with (as a cloud cluster's workers do), so the Dask runs use that lake and the
threads runs a sibling prefix of the same bucket.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
import pytest
from prefect.task_runners import ThreadPoolTaskRunner

from flows import samples
from flows.catalog import (
    CUSTOMERS,
    ENRICHED_EVENTS,
    EVENTS,
    ORDER_FEATURES,
    ORDERS,
    PRODUCTS,
    SCORED_TRANSACTIONS,
    TRANSACTIONS,
)
from flows.core import lake
from flows.core.contracts import Table
from flows.core.runners import data_parallel_runner
from flows.core.settings import LakeSettings
from flows.etl.batch_processing import batch_processing
from flows.etl.stream_enrichment import stream_enrichment
from flows.ml.feature_engineering_pipeline import feature_engineering_pipeline
from tests.conftest import MOTO_CREDENTIALS


@dataclass(frozen=True)
class Cluster:
    address: str
    bucket: str

    def lake(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


@pytest.fixture(scope="module")
def dask_cluster(moto_endpoint: str, prefect_api: str) -> Iterator[Cluster]:
    import boto3
    from distributed import LocalCluster

    bucket = f"dask-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**MOTO_CREDENTIALS, "AWS_ENDPOINT_URL": moto_endpoint}.items():
            patch.setenv(name, value)
        boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
        patch.setenv("LAKE_URI", f"s3://{bucket}/on-dask")
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            yield Cluster(cluster.scheduler_address, bucket)


def on_threads_and_on_dask(
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
    seed: Callable[[], None],
    run: Any,
    output: Table,
) -> tuple[pl.DataFrame, pl.DataFrame, set[str]]:
    """Seed the same input into two lakes, run the flow on threads in one and on the cluster in
    the other; both outputs in a stable order, and the worker processes that ran tasks."""
    from distributed import Client, get_task_stream

    outputs = []
    for prefix, runner in (
        ("threads", ThreadPoolTaskRunner()),
        ("on-dask", data_parallel_runner(LakeSettings(dask_address=cluster.address))),
    ):
        monkeypatch.setenv("LAKE_URI", cluster.lake(prefix))
        seed()
        with Client(cluster.address) as client, get_task_stream(client) as stream:
            run.with_options(task_runner=runner)()
        outputs.append(lake.read(output).sort(output.key))
    workers = {task["worker"] for task in stream.data}
    return outputs[0], outputs[1], workers


def test_batch_processing_on_two_processes_equals_the_threads_run(dask_cluster, monkeypatch):
    def seed() -> None:
        sample = pl.from_arrow(samples.transactions(2_000))
        lake.merge(TRANSACTIONS, sample.filter(pl.col("occurred_at").dt.date() < date(2024, 1, 7)))

    threads, dask, workers = on_threads_and_on_dask(
        dask_cluster, monkeypatch, seed, batch_processing, SCORED_TRANSACTIONS
    )
    assert threads.height > 0
    assert dask.equals(threads)
    assert len(workers) == 2  # six day batches spread over both worker processes
    writes = [c for c in lake.history(SCORED_TRANSACTIONS) if c["operation"] == "WRITE"]
    assert len(writes) == 6  # one exact commit per day, from several processes


def test_stream_enrichment_on_two_processes_equals_the_threads_run(dask_cluster, monkeypatch):
    def seed() -> None:
        lake.merge(CUSTOMERS, samples.customers(50))
        lake.merge(PRODUCTS, samples.products(10))
        lake.merge(EVENTS, samples.events(700, customer_count=53, product_count=12))

    threads, dask, workers = on_threads_and_on_dask(
        dask_cluster, monkeypatch, seed, stream_enrichment, ENRICHED_EVENTS
    )
    assert threads.height == 700
    assert dask.equals(threads)
    assert len(workers) == 2
    assert lake.read(ENRICHED_EVENTS)["event_date"].n_unique() == 7


def test_feature_building_on_two_processes_equals_the_threads_run(dask_cluster, monkeypatch):
    def seed() -> None:
        lake.merge(ORDERS, samples.orders(800, customer_count=60, product_count=20))
        lake.merge(CUSTOMERS, samples.customers(60))
        lake.merge(PRODUCTS, samples.products(20))
        lake.merge(EVENTS, samples.events(800, customer_count=60, product_count=20))

    threads, dask, workers = on_threads_and_on_dask(
        dask_cluster, monkeypatch, seed, feature_engineering_pipeline, ORDER_FEATURES
    )
    assert threads.height == 800
    assert dask.equals(threads)
    assert workers  # three month units ran in the worker processes
