"""Score feature-table rows not scored yet with the production model; predictions to gold.

The model is the registry's production version of `--model-name`, loaded from the lake with its
fitted preprocessing (never refitted). Only rows without a prediction for that model name are
scored (incremental), and predictions are MERGEd on (model_name, row_key), so a re-run adds
nothing. With no production model yet, the zero-config run trains the default model first (and
says so in the log); with `--no-bootstrap` (the scheduled deployment) or another model the run
names the training flow instead: by hand it fails, scheduled it completes with that message.

    python flows/ml/batch_inference.py                  # order_features.is_large_order
    python flows/ml/batch_inference.py --full-refresh   # re-score every row
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from flows.catalog import ORDER_FEATURES, PREDICTIONS
from flows.core import lake
from flows.core.artifacts import markdown_table, publish_markdown
from flows.core.cli import run_from_command_line
from flows.core.errors import ConfigurationError
from flows.core.inputs import stop
from flows.core.tasks import LAKE_READ, LAKE_WRITE
from flows.ml import modeling, registry
from flows.ml.training.flow import training_pipeline

DEFAULT_MODEL = registry.default_model_name(ORDER_FEATURES.path, "is_large_order")


def row_keys(frame: pl.DataFrame, key_columns: Sequence[str]) -> pl.Expr:
    """One string per row from its key columns (`a|b`), the same on every run."""
    return pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("") for c in key_columns], separator="|"
    ).alias("row_key")


def unscored(frame: pl.DataFrame, scored: pl.Series, key_columns: Sequence[str]) -> pl.DataFrame:
    """The rows of `frame` whose key is not among the already scored `row_key`s."""
    keyed = frame.with_columns(row_keys(frame, key_columns))
    return keyed.filter(~pl.col("row_key").is_in(scored.implode()))


def prediction_rows(
    frame: pl.DataFrame,
    scores: np.ndarray[Any, Any],
    *,
    model_name: str,
    model_version: int,
    threshold: float,
    time_column: str | None,
    feature_table: str,
    feature_table_version: int,
    scored_at: datetime,
) -> pl.DataFrame:
    """PREDICTIONS rows for the scored `frame` (which carries `row_key`)."""
    return frame.select(
        pl.lit(model_name).alias("model_name"),
        "row_key",
        pl.lit(model_version, pl.Int64).alias("model_version"),
        pl.lit(feature_table).alias("feature_table"),
        pl.lit(feature_table_version, pl.Int64).alias("feature_table_version"),
        (pl.col(time_column) if time_column else pl.lit(None, pl.Datetime("us", "UTC"))).alias(
            "event_time"
        ),
        pl.Series("score", scores, pl.Float64),
        pl.Series("prediction", scores >= threshold, pl.Boolean),
        pl.lit(scored_at, pl.Datetime("us", "UTC")).alias("scored_at"),
    )


@task(**LAKE_READ, cache_policy=NO_CACHE)
def find_production(model_name: str) -> dict[str, Any] | None:
    return registry.production_row(registry.registry_rows(model_name))


@task(**LAKE_READ, cache_policy=NO_CACHE)
def load_production(prefix: str) -> modeling.TrainedModel:
    return registry.load_model(prefix, modeling.TrainedModel)


@task(**LAKE_READ, cache_policy=NO_CACHE)
def read_unscored(
    feature_table: str, model_name: str, key_columns: list[str], full_refresh: bool
) -> tuple[pl.DataFrame, int]:
    """Rows of the feature table (at its current version) without a prediction yet."""
    table = registry.feature_table_contract(feature_table)
    version = lake.version(table)
    frame = lake.read(table, version=version)
    scored = pl.Series("row_key", [], pl.String)
    if lake.exists(PREDICTIONS) and not full_refresh:
        scored = lake.read(
            PREDICTIONS, columns=["row_key"], where=pl.col("model_name") == model_name
        ).get_column("row_key")
    return unscored(frame, scored, key_columns), version


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def write_predictions(rows: pl.DataFrame) -> lake.WriteResult:
    return lake.merge(PREDICTIONS, rows)


@flow(
    name="Batch Inference",
    description="Score new feature rows with the production model into gold/predictions.",
)
def batch_inference(
    model_name: str = DEFAULT_MODEL,
    key_columns: list[str] | None = None,
    full_refresh: bool = False,
    bootstrap: bool = True,
    sample_data: bool | None = None,
) -> dict[str, Any] | State[Any]:
    """Find the production model, score the rows it has not scored, MERGE the predictions.

    Args:
        model_name: the registered model whose production version scores.
        key_columns: the columns that identify a row (default: those the model's training
            recorded, else the feature table's key).
        full_refresh: score every row again, not only the new ones.
        bootstrap: with no production model yet, train one first instead of failing.
        sample_data: fill a missing input with sample rows; default: the LAKE_SAMPLE_DATA
            setting (on for a local lake, off on S3 and in deployment runs).
    """
    logger = get_run_logger()
    production = find_production(model_name)
    if production is None and not (bootstrap and model_name == DEFAULT_MODEL):
        return stop(
            f"no production version of model {model_name!r} in the registry:"
            " run flows/ml/training_pipeline.py for it first"
        )
    if production is None:
        logger.warning("No production version of %s yet: training one first", model_name)
        run = training_pipeline(model_name=model_name, sample_data=sample_data, return_state=True)
        trained = run.result()
        if not isinstance(trained, dict):  # stopped: an input is missing
            return stop(f"{model_name} was not trained: {run.message}")
        production = find_production(model_name)
        if production is None:
            raise ConfigurationError(f"{model_name} was not promoted: {trained['decision']}")
    model = load_production(production["artifact_uri"])
    feature_table = str(production["feature_table"])
    keys = (
        key_columns
        or registry.recorded_key_columns(production)
        or list(registry.feature_table_contract(feature_table).key)
    )
    if not keys:
        raise ConfigurationError(
            f"{feature_table} declares no key: pass --key-columns to identify its rows"
        )
    rows, table_version = read_unscored(feature_table, model_name, keys, full_refresh)
    scores = modeling.probabilities(model, rows) if rows.height else np.empty(0)
    predictions = prediction_rows(
        rows,
        scores,
        model_name=model_name,
        model_version=int(production["version"]),
        threshold=model.threshold,
        time_column=production["time_column"],
        feature_table=feature_table,
        feature_table_version=table_version,
        scored_at=datetime.now(UTC),
    )
    written = write_predictions(predictions)
    summary = {
        "model_name": model_name,
        "model_version": int(production["version"]),
        "feature_table": f"{feature_table} v{table_version}",
        "scored": predictions.height,
        "predicted_positive": int(predictions.get_column("prediction").sum()),
        "mean_score": float(np.mean(scores)) if len(scores) else None,
        "predictions_version": written.version,
    }
    logger.info("Scored %d new rows with %s v%s", rows.height, model_name, production["version"])
    publish_markdown(
        f"batch-inference-{model_name}",
        f"# {model_name} v{production['version']}: {predictions.height} rows scored\n\n"
        + markdown_table([summary]),
        description="What this inference run scored and with which model version",
    )
    return summary


if __name__ == "__main__":
    run_from_command_line(batch_inference)
