"""ML on a table the project never declared: a scikit-learn dataset written as a Delta table, with
no time column and no key, is trained on and scored with no --time-column and no --key-columns."""

import json
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
from sklearn.datasets import load_breast_cancer

from flows.catalog import MODEL_REGISTRY, PREDICTIONS
from flows.core import lake
from flows.core.contracts import Table
from flows.ml.batch_inference import batch_inference
from flows.ml.registry import recorded_key_columns, write_registry
from flows.ml.training_pipeline import training_pipeline

TUMOURS = Table("tumours", "silver")


def tumours() -> pa.Table:
    data = load_breast_cancer(as_frame=True).frame
    data.columns = [name.replace(" ", "_") for name in data.columns]
    return pa.Table.from_pandas(data, preserve_index=False)


def test_training_and_inference_on_a_table_without_time_column_or_key(local_lake, prefect_api):
    lake.append(TUMOURS, tumours())
    trained = training_pipeline(feature_table=TUMOURS.path, target="target", candidates=2, folds=2)
    assert (trained["model_name"], trained["stage"]) == ("tumours.target", "production")
    assert trained["metrics"]["roc_auc"] > 0.9
    assert trained["metrics"]["rows"] == 114  # 20% of 569, each class in proportion
    row = lake.read(MODEL_REGISTRY).row(0, named=True)
    assert row["time_column"] is None
    assert json.loads(row["metrics"])["holdout_from"] == "a random split"
    assert recorded_key_columns(row) == [n for n in tumours().column_names if n != "target"]
    assert json.loads(row["features"])["numeric"] == recorded_key_columns(row)

    scored = batch_inference(model_name="tumours.target")
    assert scored["scored"] == 569
    assert batch_inference(model_name="tumours.target")["scored"] == 0
    predictions = lake.read(PREDICTIONS, where=pl.col("model_name") == "tumours.target")
    assert predictions.height == 569
    assert predictions["event_time"].null_count() == 569


def test_a_registry_written_before_key_columns_existed_gains_the_column(local_lake):
    old_schema = pa.schema([f for f in MODEL_REGISTRY.schema if f.name != "key_columns"])
    lake.create_if_missing(Table(MODEL_REGISTRY.name, MODEL_REGISTRY.layer), old_schema)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    row = dict.fromkeys(MODEL_REGISTRY.schema.names) | {
        "model_name": "m", "version": 1, "stage": "staging", "key_columns": '["id"]',
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    write_registry([row])
    assert recorded_key_columns(lake.read(MODEL_REGISTRY).row(0, named=True)) == ["id"]
