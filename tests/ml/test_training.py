import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from flows.catalog import MODEL_REGISTRY
from flows.core import lake, storage
from flows.core.contracts import Table
from flows.ml.features.flow import feature_engineering_pipeline
from flows.ml.modeling import TrainedModel
from flows.ml.registry import load_model
from flows.ml.training.flow import training_pipeline

CHURN = Table("churn_signals", "gold")


def churn_table(rows, seed, start=datetime(2024, 1, 1, tzinfo=UTC)):
    """A feature table no flow knows: a strong numeric signal, a weak categorical one, noise."""
    rng = np.random.default_rng(seed)
    spend = rng.normal(0, 1, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    logit = 2.5 * spend + np.where(plan == "basic", 0.4, -0.2)
    return pl.DataFrame(
        {
            "account_id": np.arange(rows),
            "signed_up": [
                start + timedelta(hours=int(h)) for h in np.sort(rng.integers(0, 24 * 90, rows))
            ],
            "spend": spend,
            "tenure_days": rng.integers(1, 900, rows),
            "plan": plan,
            "support_note": rng.choice(
                ["asked about billing", "reported a bug", "no contact"], rows
            ),
            "churned": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64),
        }
    )


def train(**overrides):
    arguments = {
        "feature_table": CHURN.path,
        "target": "churned",
        "time_column": "signed_up",
        "candidates": 2,
        "folds": 2,
    }
    return training_pipeline(**{**arguments, **overrides})


def stages(model_name):
    rows = lake.read(MODEL_REGISTRY, where=pl.col("model_name") == model_name).sort("version")
    return [(r["version"], r["stage"]) for r in rows.iter_rows(named=True)]


def test_unseen_table_promotion_is_gated_on_the_same_holdout_and_training_is_reproducible(
    local_lake, prefect_api
):
    lake.append(CHURN, churn_table(1_500, seed=1))
    name = "churn_signals.churned"

    weak = train(exclude=["spend"])
    assert (weak["version"], weak["stage"]) == (1, "production")

    strong = train()
    assert strong["metrics"]["roc_auc"] > weak["metrics"]["roc_auc"] + 0.1
    assert strong["production_metrics"] is not None  # v1 was scored on v2's holdout
    assert strong["production_metrics"]["rows"] == strong["metrics"]["rows"]
    assert strong["promoted"]
    assert stages(name) == [(1, "archived"), (2, "production")]
    assert lake.history(MODEL_REGISTRY, limit=1)[0]["operation"] == "MERGE"  # both rows, one commit

    same = train()
    assert same["metrics"] == strong["metrics"]
    assert same["params"] == strong["params"]
    assert not same["promoted"]
    assert "does not beat" in same["decision"]
    assert stages(name) == [(1, "archived"), (2, "production"), (3, "staging")]

    lake.append(CHURN, churn_table(300, seed=2, start=datetime(2024, 6, 1, tzinfo=UTC)))
    pinned = train(table_version=0)
    assert pinned["metrics"] == strong["metrics"]
    assert pinned["input_versions"] == {CHURN.path: 0}

    row = lake.read(
        MODEL_REGISTRY, where=(pl.col("model_name") == name) & (pl.col("version") == 2)
    ).row(0, named=True)
    assert json.loads(row["input_versions"]) == {CHURN.path: 0}
    assert row["code_version"].startswith(("git:", "datalake-flows=="))
    assert json.loads(row["features"]) == {
        "numeric": ["spend", "tenure_days"],
        "categorical": ["plan"],
        "text": ["support_note"],
    }
    assert set(json.loads(row["params"])) == {"model__C", "model__class_weight"}
    assert json.loads(row["metrics"])["roc_auc"] == pytest.approx(strong["metrics"]["roc_auc"])
    assert storage.list_objects(f"models/{name}/2") == [
        f"models/{name}/2/{f}"
        for f in ("confusion_matrix.svg", "model.pkl", "report.md", "roc.svg")
    ]
    assert "## Holdout metrics" in storage.read_bytes(f"models/{name}/2/report.md").decode()
    assert isinstance(load_model(row["artifact_uri"], TrainedModel), TrainedModel)


def test_target_with_more_than_two_classes_is_refused_before_anything_is_registered(
    local_lake, prefect_api
):
    lake.append(
        CHURN, churn_table(200, seed=1).with_columns(pl.col("tenure_days").alias("churned"))
    )
    with pytest.raises(Exception, match="exactly two values"):
        train()
    assert not lake.exists(MODEL_REGISTRY)


def test_default_run_trains_on_the_order_features(any_lake, prefect_api):
    feature_engineering_pipeline(sample_rows=1_500, sample_data=True)  # off by default on S3
    result = training_pipeline(candidates=2, folds=2)
    assert (result["model_name"], result["version"], result["stage"]) == (
        "order_features.is_large_order",
        1,
        "production",
    )
    assert result["metrics"]["roc_auc"] > 0.6  # quantity predicts a large order
    assert storage.object_exists("models/order_features.is_large_order/1/model.pkl")
