"""Train a classifier on any Delta feature table, register it, and promote it only if it is better.

Given a table, a binary target and a time column: numeric, categorical and text columns are
detected, the newest rows become the holdout, a successive-halving random search tunes the model
on time-ordered folds, and the fitted pipeline (preprocessing included) is saved under
models/<name>/<version>/ with its report and plots. _ops/model_registry gets the version's params,
metrics, input table version and code version. It goes to production only if it beats the current
production model, scored on the same holdout, by a margin; else it stays in staging.
The same table version and seed give the same metrics.

    python flows/ml/training_pipeline.py                      # gold/order_features, is_large_order
    python flows/ml/training_pipeline.py --feature-table gold/churn --target churned \
        --time-column ts
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.catalog import ORDER_FEATURES
from flows.core import lake, storage
from flows.core.artifacts import publish_markdown, publish_table
from flows.core.errors import ContractViolation
from flows.core.tasks import LAKE_READ, LAKE_WRITE
from flows.ml import _modeling as modeling
from flows.ml._registry import (
    ModelVersion,
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
from flows.ml._report import confusion_svg, roc_svg, training_report
from flows.ml.feature_engineering_pipeline import feature_engineering_pipeline


def default_model_name(feature_table: str, target: str) -> str:
    """`<table name>.<target>`, e.g. `order_features.is_large_order`."""
    return f"{feature_table.rsplit('/', 1)[-1]}.{target}"


def holdout_metrics(
    model: modeling.TrainedModel, holdout: pl.DataFrame
) -> tuple[dict[str, float], Any]:
    """Metrics of `model` on `holdout`, and its scores there."""
    labels, _ = modeling.binary_labels(holdout.get_column(model.target))
    scores = modeling.probabilities(model, holdout)
    return modeling.classification_metrics(labels, scores, model.threshold), scores


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_feature_table(path: str, version: int | None) -> tuple[pl.DataFrame, int]:
    """The whole table at one version (the newest unless pinned), and that version."""
    table = feature_table_contract(path)
    pinned = lake.version(table) if version is None else version
    return lake.read(table, version=pinned), pinned


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_registry(model_name: str) -> pl.DataFrame:
    return registry_rows(model_name)


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


def _production_metrics(
    row: dict[str, Any] | None, holdout: pl.DataFrame, target: str
) -> tuple[dict[str, float] | None, str]:
    """The production model scored on the candidate's holdout, or why it cannot be."""
    if row is None:
        return None, ""
    model = load_production_model(row["artifact_uri"])
    if model.target != target:
        return None, f"production v{row['version']} predicts {model.target!r}, not {target!r}"
    try:
        return holdout_metrics(model, holdout)[0], ""
    except (ContractViolation, KeyError, ValueError) as error:
        return None, f"production v{row['version']} cannot score this holdout: {error}"


@flow(
    name="Training Pipeline",
    description="Tune, evaluate and register a classifier on Delta feature table; gated promotion.",
)
def training_pipeline(
    feature_table: str = ORDER_FEATURES.path,
    target: str = "is_large_order",
    time_column: str = "event_time",
    model_name: str | None = None,
    exclude: list[str] | None = None,
    table_version: int | None = None,
    seed: int = 42,
    holdout_fraction: float = 0.2,
    candidates: int = 6,
    folds: int = 3,
    promotion_metric: str = "roc_auc",
    promotion_margin: float = 0.005,
) -> dict[str, Any]:
    """Train, evaluate against production on the same holdout, save, register, maybe promote."""
    logger = get_run_logger()
    name = model_name or default_model_name(feature_table, target)
    contract = feature_table_contract(feature_table)
    if contract is ORDER_FEATURES and not lake.exists(ORDER_FEATURES):
        logger.warning("%s does not exist yet: building it first", ORDER_FEATURES.path)
        feature_engineering_pipeline()

    frame, version = read_feature_table(feature_table, table_version)
    columns = modeling.detect_columns(
        frame, target=target, time_column=time_column, exclude=tuple(exclude or ())
    )
    training, holdout, cutoff = modeling.time_split(
        frame, time_column=time_column, holdout_fraction=holdout_fraction
    )
    labels, positive = modeling.binary_labels(training.get_column(target))
    pipeline, params, cv_auc = modeling.tuned_model(
        modeling.model_inputs(training, columns),
        labels,
        columns,
        seed=seed,
        candidates=candidates,
        folds=folds,
    )
    model = modeling.TrainedModel(pipeline, columns, target, positive)
    metrics, scores = holdout_metrics(model, holdout)
    metrics["cv_roc_auc"] = cv_auc
    logger.info("Trained %s on %d rows; holdout %s", name, training.height, metrics)

    registry = read_registry(name)
    current = production_row(registry)
    production, unusable = _production_metrics(current, holdout, target)
    if unusable:
        promote, decision = False, f"{unusable}: kept in staging, promote by hand if intended"
    else:
        promote, decision = promotion_decision(
            metrics, production, metric=promotion_metric, margin=promotion_margin
        )
    model_version = next_version(registry)
    prefix = model_prefix(name, model_version)
    holdout_labels, _ = modeling.binary_labels(holdout.get_column(target))
    fpr, tpr = modeling.roc_points(holdout_labels, scores)
    matrix = modeling.confusion(holdout_labels, scores)
    compared = {f"v{model_version} (candidate)": metrics}
    if production is not None and current is not None:
        compared[f"v{current['version']} (production)"] = production
    report = training_report(
        title=f"{name} v{model_version} on {feature_table} v{version}",
        metrics=compared,
        matrix=matrix,
        calibration=modeling.calibration_table(holdout_labels, scores),
        params=params,
        decision=decision,
        plots={"ROC curve": "roc.svg", "Confusion matrix": "confusion_matrix.svg"},
    )
    location = save_artifacts(
        model,
        prefix,
        {
            "report.md": report,
            "roc.svg": roc_svg(fpr, tpr, metrics["roc_auc"]),
            "confusion_matrix.svg": confusion_svg(matrix),
        },
    )
    now = datetime.now(UTC)
    candidate = ModelVersion(
        model_name=name,
        version=model_version,
        feature_table=feature_table,
        target=target,
        time_column=time_column,
        features=columns.__dict__,
        params=params,
        metrics={**metrics, "holdout_from": cutoff.isoformat()},
        input_versions={feature_table: version},
        seed=seed,
        note=decision,
    ).row(now)
    registered = register(registry_updates(candidate, current, promote=promote, now=now))
    stage = "production" if promote else "staging"
    logger.info("Registered %s v%d as %s: %s", name, model_version, stage, decision)

    publish_markdown(
        f"training-report-{name}",
        report + f"\n\nModel: `{location}`",
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
        "metrics": metrics,
        "production_metrics": production,
        "params": params,
        "input_versions": {feature_table: version},
        "artifact": location,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=training_pipeline.description)
    parser.add_argument("--feature-table", default=ORDER_FEATURES.path, help="<layer>/<name>")
    parser.add_argument("--target", default="is_large_order", help="binary target column")
    parser.add_argument("--time-column", default="event_time", help="orders rows in time")
    parser.add_argument("--model-name", help="default: <table name>.<target>")
    parser.add_argument("--exclude", nargs="*", default=[], help="columns that are not features")
    parser.add_argument("--table-version", type=int, help="pin the feature table's Delta version")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--candidates", type=int, default=6, help="search candidates")
    parser.add_argument("--promotion-metric", default="roc_auc")
    parser.add_argument("--promotion-margin", type=float, default=0.005)
    args = parser.parse_args()
    training_pipeline(
        feature_table=args.feature_table,
        target=args.target,
        time_column=args.time_column,
        model_name=args.model_name,
        exclude=args.exclude,
        table_version=args.table_version,
        seed=args.seed,
        candidates=args.candidates,
        promotion_metric=args.promotion_metric,
        promotion_margin=args.promotion_margin,
    )


if __name__ == "__main__":
    main()
