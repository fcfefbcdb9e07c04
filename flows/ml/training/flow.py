"""The training pipeline's tasks and flow (flows/ml/training_pipeline.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from flows.catalog import ORDER_FEATURES
from flows.core import lake, storage
from flows.core.artifacts import publish_markdown, publish_table
from flows.core.inputs import stop
from flows.core.tasks import LAKE_READ, LAKE_WRITE
from flows.ml import modeling
from flows.ml.features.flow import feature_engineering_pipeline
from flows.ml.registry import (
    ModelVersion,
    default_model_name,
    feature_table_contract,
    load_model,
    model_prefix,
    next_version,
    production_row,
    promotion_decision,
    registry_rows,
    registry_updates,
    save_model,
    write_registry,
)
from flows.ml.training.report import report_files


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_feature_table(path: str, version: int | None) -> tuple[pl.DataFrame, int]:
    """The whole table at one version (the newest unless pinned), and that version."""
    table = feature_table_contract(path)
    pinned = lake.version(table) if version is None else version
    return lake.read(table, version=pinned), pinned


read_registry = task(**LAKE_READ, cache_policy=NO_CACHE)(registry_rows)


@task(**LAKE_READ, cache_policy=NO_CACHE)
def load_production_model(prefix: str) -> modeling.TrainedModel:
    return load_model(prefix, modeling.TrainedModel)


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def save_artifacts(model: modeling.TrainedModel, prefix: str, files: dict[str, str]) -> str:
    """The fitted model and its report files; returns the model's location."""
    for name, text in files.items():
        storage.write_bytes(f"{prefix}/{name}", text.encode())
    return save_model(model, prefix)


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def register(rows: list[dict[str, Any]]) -> lake.WriteResult:
    """The new version (and an archived predecessor) in one MERGE commit."""
    return write_registry(rows)


def _promotion(
    row: dict[str, Any] | None, trained: modeling.Candidate, metric: str, margin: float
) -> tuple[dict[str, float] | None, bool, str]:
    """Production's metrics on the candidate's holdout (if it can be scored), promotion, why."""
    production, unusable = None, ""
    if row is not None:
        model = load_production_model(row["artifact_uri"])
        production, unusable = modeling.comparable_metrics(
            model, trained.holdout, trained.model.target
        )
    if unusable:
        why = f"production v{row and row['version']} {unusable}"
        return None, False, f"{why}: kept in staging, promote by hand if intended"
    return production, *promotion_decision(
        trained.metrics, production, metric=metric, margin=margin
    )


@flow(
    name="Training Pipeline",
    description="Tune, evaluate and register a classifier on Delta feature table; gated promotion.",
)
def training_pipeline(
    feature_table: str = ORDER_FEATURES.path,
    target: str = "is_large_order",
    time_column: str | None = None,
    key_columns: list[str] | None = None,
    model_name: str | None = None,
    exclude: list[str] | None = None,
    table_version: int | None = None,
    seed: int = 42,
    holdout_fraction: float = 0.2,
    candidates: int = 6,
    folds: int = 3,
    promotion_metric: str = "roc_auc",
    promotion_margin: float = 0.005,
    sample_data: bool | None = None,
) -> dict[str, Any] | State[Any]:
    """Train, evaluate against production on the same holdout, save, register, maybe promote.

    Args:
        feature_table: the Delta table to train on, `<layer>/<name>`.
        target: the binary target column.
        time_column: orders rows in time, the holdout being the newest (default: the contract's
            `newest_by`; none: a seeded, stratified random holdout).
        key_columns: the columns that identify a row, recorded for batch inference (default:
            the table's key, else its unique id columns, else every feature column).
        model_name: the registry name (default: `<table name>.<target>`).
        exclude: columns that are not features.
        table_version: pin the feature table's Delta version (default: the newest).
        seed: the search's and the split's seed.
        holdout_fraction: the share of rows held out for evaluation.
        candidates: hyperparameter candidates the search starts with.
        folds: cross-validation folds of the search.
        promotion_metric: the holdout metric that decides promotion.
        promotion_margin: promote only when the metric beats production by this much.
        sample_data: fill a missing input with sample rows; default: the LAKE_SAMPLE_DATA
            setting (on for a local lake, off on S3 and in deployment runs).
    """
    logger = get_run_logger()
    name = model_name or default_model_name(feature_table, target)
    table = feature_table_contract(feature_table)
    if table is ORDER_FEATURES and not lake.exists(ORDER_FEATURES):
        logger.warning("%s does not exist yet: building it first", ORDER_FEATURES.path)
        built = feature_engineering_pipeline(sample_data=sample_data, return_state=True)
        if not isinstance(built.result(), dict):  # stopped: its inputs are missing
            return stop(f"{ORDER_FEATURES.path} was not built, no model trained: {built.message}")
    frame, version = read_feature_table(feature_table, table_version)
    time_column = time_column or table.newest_by
    trained = modeling.train_candidate(
        frame,
        target=target,
        time_column=time_column,
        key_columns=key_columns or (),
        declared_key=table.key,
        exclude=tuple(exclude or ()),
        holdout_fraction=holdout_fraction,
        seed=seed,
        candidates=candidates,
        folds=folds,
    )
    logger.info("Trained %s on %d rows; holdout %s", name, trained.training_rows, trained.metrics)
    registry = read_registry(name)
    current = production_row(registry)
    production, promote, decision = _promotion(current, trained, promotion_metric, promotion_margin)
    model_version = next_version(registry)
    files = report_files(
        trained,
        title=f"{name} v{model_version} on {feature_table} v{version}",
        version=model_version,
        production=(current["version"], production) if current and production else None,
        decision=decision,
    )
    location = save_artifacts(trained.model, model_prefix(name, model_version), files)
    now = datetime.now(UTC)
    candidate = ModelVersion(
        model_name=name,
        version=model_version,
        feature_table=feature_table,
        target=target,
        time_column=time_column,
        key_columns=trained.key_columns,
        features=trained.model.columns.__dict__,
        params=trained.params,
        metrics={**trained.metrics, "holdout_from": trained.holdout_from},
        input_versions={feature_table: version},
        seed=seed,
        note=decision,
    ).row(now)
    registered = register(registry_updates(candidate, current, promote=promote, now=now))
    stage = "production" if promote else "staging"
    logger.info("Registered %s v%d as %s: %s", name, model_version, stage, decision)
    publish_markdown(
        f"training-report-{name}",
        files["report.md"] + f"\n\nModel: `{location}`",
        description=f"{name} v{model_version}: metrics, confusion matrix, calibration",
    )
    publish_table(
        f"model-registry-{name}",
        registry_rows(name).select("version", "stage", "promotion_note", "created_at"),
        description=f"Versions of {name} after registry commit v{registered.version}",
    )
    return {
        "model_name": name,
        "version": model_version,
        "stage": stage,
        "promoted": promote,
        "decision": decision,
        "metrics": trained.metrics,
        "production_metrics": production,
        "params": trained.params,
        "input_versions": {feature_table: version},
        "artifact": location,
    }
