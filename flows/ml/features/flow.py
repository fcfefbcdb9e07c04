"""Feature engineering's tasks and flow (flows/ml/feature_engineering_pipeline.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from flows import samples
from flows.catalog import CUSTOMERS, EVENTS, FEATURE_METADATA, ORDER_FEATURES, ORDERS, PRODUCTS
from flows.core import lake
from flows.core.artifacts import markdown_table, publish_markdown, publish_table
from flows.core.contracts import Table
from flows.core.inputs import Sampler, provide_inputs, stop
from flows.core.runners import data_parallel_runner
from flows.core.tasks import LAKE_READ, LAKE_WRITE
from flows.ml.features.transforms import FEATURE_FAMILIES, features_of_month, month_starts

SOURCES: tuple[Table, ...] = (ORDERS, CUSTOMERS, PRODUCTS, EVENTS)


def feature_metadata_rows(
    features: pl.DataFrame,
    *,
    feature_table: str,
    feature_table_version: int,
    source_versions: dict[str, int],
    built_at: datetime,
) -> pl.DataFrame:
    """One FEATURE_METADATA row per feature column, with its family and null share."""
    versions = json.dumps(source_versions, sort_keys=True)
    return pl.DataFrame(
        [
            {
                "feature_table": feature_table,
                "feature": name,
                "family": family,
                "dtype": str(features.schema[name]),
                "description": description,
                "source_versions": versions,
                "feature_table_version": feature_table_version,
                "built_at": built_at,
            }
            for name, (family, description) in FEATURE_FAMILIES.items()
        ]
    )


def feature_profile(features: pl.DataFrame) -> list[dict[str, Any]]:
    """Family and share of nulls per feature, for the run's artifact."""
    nulls = features.null_count().row(0, named=True)
    return [
        {
            "feature": name,
            "family": family,
            "null_share": nulls[name] / max(features.height, 1),
        }
        for name, (family, _) in FEATURE_FAMILIES.items()
    ]


def source_samples(rows: int, seed: int) -> list[tuple[Table, Sampler]]:
    """Each source with the sample that may fill it when it is missing."""
    return [
        (ORDERS, lambda: samples.orders(rows, seed=seed)),
        (CUSTOMERS, samples.customers),
        (PRODUCTS, samples.products),
        (EVENTS, lambda: samples.events(rows, seed=seed)),
    ]


@task(**LAKE_READ, cache_policy=NO_CACHE)
def pin_sources() -> tuple[dict[str, int], list[datetime]]:
    """Each source's version now (every unit reads these: the features' lineage) and the
    months of orders, the units built in parallel."""
    versions = {table.path: lake.version(table) for table in SOURCES}
    placed = lake.scan(ORDERS, version=versions[ORDERS.path]).select("updated_at").collect()
    return versions, month_starts(placed["updated_at"])


@task(**LAKE_READ, cache_policy=NO_CACHE)
def build_month(month: datetime, versions: dict[str, int]) -> pl.DataFrame:
    """The features of the orders placed in `month`, from the pinned source versions."""
    frames = {table.path: lake.read(table, version=versions[table.path]) for table in SOURCES}
    return features_of_month(*(frames[table.path] for table in SOURCES), month=month)


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def write_features(features: pl.DataFrame) -> lake.WriteResult:
    return lake.overwrite(ORDER_FEATURES, features)


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def record_feature_metadata(rows: pl.DataFrame) -> lake.WriteResult:
    return lake.merge(FEATURE_METADATA, rows)


@flow(
    name="Feature Engineering Pipeline",
    description="Point-in-time correct order features from silver into gold/order_features,"
    " built as one mapped task per month of orders (threads or Dask).",
    task_runner=data_parallel_runner(),
)
def feature_engineering_pipeline(
    sample_data: bool | None = None, sample_rows: int = 10_000, seed: int = 42
) -> dict[str, Any] | State[Any]:
    """Check the sources, build features from pinned versions, write them and their lineage.

    Args:
        sample_data: fill a missing input with sample rows; default: the LAKE_SAMPLE_DATA
            setting (on for a local lake, off on S3 and in deployment runs).
        sample_rows: sample orders and events written if a source table does not exist.
        seed: the sample data's seed.
    """
    logger = get_run_logger()
    reason = provide_inputs(source_samples(sample_rows, seed), sample_data)
    if reason:
        return stop(reason)
    versions, months = pin_sources()
    if not months:
        return stop(f"{ORDERS.path} has no orders to build features for")
    parts = [future.result() for future in build_month.map(months, unmapped(versions))]
    features = pl.concat(parts).sort("event_time", "order_id")
    written = write_features(features)
    metadata = feature_metadata_rows(
        features,
        feature_table=ORDER_FEATURES.path,
        feature_table_version=written.version,
        source_versions=versions,
        built_at=datetime.now(UTC),
    )
    record_feature_metadata(metadata)
    logger.info("Wrote %d feature rows (version %d)", written.rows, written.version)

    publish_table(
        "order-features-profile",
        feature_profile(features),
        description=f"Features of {ORDER_FEATURES.path} v{written.version}: family, null share",
    )
    lineage = [{"source": path, "version": version} for path, version in versions.items()]
    publish_markdown(
        "order-features-lineage",
        f"# {ORDER_FEATURES.path} v{written.version}: {written.rows} rows\n\n"
        "Each feature uses only data strictly before its order. Built from:\n\n"
        + markdown_table(lineage),
        description="Which source versions the features were built from",
    )
    return {
        "rows": written.rows,
        "version": written.version,
        "source_versions": versions,
    }
