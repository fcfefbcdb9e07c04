import os
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from flows.catalog import MODEL_REGISTRY, ORDER_FEATURES, PREDICTIONS
from flows.core import lake
from flows.core.errors import ConfigurationError
from flows.ml import modeling
from flows.ml.batch_inference import (
    DEFAULT_MODEL,
    batch_inference,
    prediction_rows,
    row_keys,
    unscored,
)
from flows.ml.features.flow import feature_engineering_pipeline
from flows.ml.registry import load_model
from flows.ml.training.flow import training_pipeline
from tests.conftest import REPO_ROOT

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_row_keys_join_key_columns_and_survive_nulls():
    frame = pl.DataFrame({"a": [1, 2], "b": ["x", None]})
    assert frame.select(row_keys(frame, ["a", "b"]))["row_key"].to_list() == ["1|x", "2|"]


def test_unscored_keeps_only_rows_without_a_prediction():
    frame = pl.DataFrame({"order_id": [1, 2, 3]})
    rows = unscored(frame, pl.Series(["1", "3"]), ["order_id"])
    assert rows["order_id"].to_list() == [2]
    assert unscored(frame, pl.Series([], dtype=pl.String), ["order_id"]).height == 3


def test_prediction_rows_carry_model_version_and_threshold_decision():
    frame = pl.DataFrame({"row_key": ["1", "2"], "ts": [T0, T0]})
    rows = prediction_rows(
        frame, np.array([0.2, 0.7]), model_name="m", model_version=3, threshold=0.5, time_column="ts",
        feature_table="gold/f", feature_table_version=9, scored_at=T0,
    )  # fmt: skip
    assert rows["prediction"].to_list() == [False, True]
    assert rows.row(0, named=True) | {"score": None} == {
        "model_name": "m", "row_key": "1", "model_version": 3, "feature_table": "gold/f",
        "feature_table_version": 9, "event_time": T0, "score": None, "prediction": False, "scored_at": T0,
    }  # fmt: skip
    PREDICTIONS.conform(rows.to_arrow())


def test_scores_with_the_production_model_incrementally_without_refitting(any_lake, prefect_api):
    feature_engineering_pipeline(sample_rows=1_500, sample_data=True)  # off by default on S3
    training_pipeline(candidates=2, folds=2)
    first = batch_inference()
    assert (first["model_name"], first["model_version"], first["scored"]) == (
        DEFAULT_MODEL,
        1,
        1_500,
    )

    predictions = lake.read(PREDICTIONS)
    assert predictions.height == 1_500 == predictions["row_key"].n_unique()
    model = load_model(lake.read(MODEL_REGISTRY)["artifact_uri"][0], modeling.TrainedModel)
    features = lake.read(ORDER_FEATURES).sort("order_id")
    expected = modeling.probabilities(model, features)
    scored = predictions.sort(pl.col("row_key").cast(pl.Int64))["score"].to_numpy()
    np.testing.assert_allclose(scored, expected)  # the saved pipeline as fitted, not refitted

    again = batch_inference()
    assert again["scored"] == 0
    assert lake.read(PREDICTIONS).height == 1_500

    more = lake.read(ORDER_FEATURES).head(10).with_columns(pl.col("order_id") + 1_000_000)
    lake.append(ORDER_FEATURES, more)
    assert batch_inference()["scored"] == 10
    assert lake.read(PREDICTIONS).height == 1_510


def test_without_a_production_model_and_without_bootstrap_the_error_names_the_training_flow(
    local_lake, prefect_api
):
    with pytest.raises(ConfigurationError, match=r"run flows/ml/training_pipeline\.py"):
        batch_inference(bootstrap=False)
    with pytest.raises(ConfigurationError, match="no production version of model 'other'"):
        batch_inference(model_name="other")
    assert not lake.exists(PREDICTIONS)


@pytest.mark.slow
def test_command_without_a_production_model_trains_one_first_then_scores(local_lake, prefect_api):
    feature_engineering_pipeline(sample_rows=1_000)  # small sources; the command does the rest
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    done = subprocess.run(
        [sys.executable, "flows/ml/batch_inference.py"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "No production version of order_features.is_large_order yet: training one first"
        in done.stderr
    )
    assert lake.read(PREDICTIONS).height == 1_000
    assert (local_lake / "models" / DEFAULT_MODEL / "1" / "model.pkl").is_file()
