import math
import pickle
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from flows.catalog import ORDER_FEATURES
from flows.core import storage
from flows.core.errors import ConfigurationError, ContractViolation
from flows.ml import modeling
from flows.ml.registry import (
    feature_table_contract,
    load_model,
    next_version,
    production_row,
    promotion_decision,
    registry_updates,
)
from flows.ml.training.report import confusion_svg, report_files, roc_svg, training_report

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_detect_columns_sorts_features_by_encoding_and_skips_ids_target_and_time():
    frame = pl.DataFrame(
        {
            "customer_id": [1, 2],
            "id": [1, 2],
            "spend": [1.5, 2.0],
            "visits": [1, 3],
            "active": [True, False],
            "plan": ["basic", "pro"],
            "notes": ["called about billing", "happy customer"],
            "ts": [T0, T0],
            "churned": [0, 1],
            "tags": [[1], [2]],
        }
    )
    columns = modeling.detect_columns(
        frame, target="churned", time_column="ts", exclude=("visits",)
    )
    assert columns == modeling.FeatureColumns(("spend", "active"), ("plan",), ("notes",))


@pytest.mark.parametrize(
    ("target", "time_column", "flag"), [("churn", "ts", "--target"), ("y", "time", "--time-column")]
)
def test_detect_columns_names_the_flag_of_a_missing_target_or_time_column(
    target, time_column, flag
):
    frame = pl.DataFrame({"x": [1.0], "ts": [T0], "y": [1]})
    with pytest.raises(ContractViolation, match=f"{flag} .* is not in the table"):
        modeling.detect_columns(frame, target=target, time_column=time_column)


def test_random_split_is_seeded_and_holds_out_each_class_in_proportion():
    frame = pl.DataFrame({"x": range(100), "y": [1] * 20 + [0] * 80})
    training, holdout = modeling.random_split(frame, target="y", holdout_fraction=0.25, seed=7)
    assert (training.height, holdout.height) == (75, 25)
    assert holdout["y"].sum() == 5
    assert set(training["x"]) | set(holdout["x"]) == set(range(100))
    again, _ = modeling.random_split(frame, target="y", holdout_fraction=0.25, seed=7)
    assert again.equals(training)
    other, _ = modeling.random_split(frame, target="y", holdout_fraction=0.25, seed=8)
    assert not other.equals(training)


FEATURES = modeling.FeatureColumns(("x",), ("c",), ())


@pytest.mark.parametrize(
    ("frame", "given", "declared", "key"),
    [
        (pl.DataFrame({"id": [1, 2], "x": [0.1, 0.1], "c": ["a", "a"]}), ["x"], ["id"], ("x",)),
        (pl.DataFrame({"id": [1, 2], "x": [0.1, 0.1], "c": ["a", "a"]}), [], ["id"], ("id",)),
        (pl.DataFrame({"row_id": [1, 2], "x": [0.1, 0.2], "c": ["a", "b"]}), [], [], ("row_id",)),
        (pl.DataFrame({"row_id": [1, 1], "x": [0.1, 0.2], "c": ["a", "b"]}), [], [], ("x", "c")),
        (pl.DataFrame({"x": [0.1, 0.2], "c": ["a", "b"]}), [], [], ("x", "c")),
    ],
)
def test_row_key_columns_prefer_the_flag_then_the_declared_key_then_unique_ids(
    frame, given, declared, key
):
    assert modeling.row_key_columns(frame, given=given, declared=declared, features=FEATURES) == key


def test_row_key_columns_name_the_flag_of_an_absent_column():
    frame = pl.DataFrame({"x": [0.1]})
    with pytest.raises(ContractViolation, match="--key-columns"):
        modeling.row_key_columns(frame, given=["order_id"], declared=[], features=FEATURES)


def test_detect_columns_refuses_a_table_without_features():
    frame = pl.DataFrame({"order_id": [1], "ts": [T0], "y": [1]})
    with pytest.raises(ContractViolation, match="no usable feature columns"):
        modeling.detect_columns(frame, target="y", time_column="ts")


@pytest.mark.parametrize(
    ("values", "labels", "positive"),
    [
        ([True, False, True], [1, 0, 1], True),
        (["no", "yes", "no"], [0, 1, 0], "yes"),
        ([3, 7, 7], [0, 1, 1], 7),
    ],
)
def test_binary_labels_take_the_larger_value_as_positive(values, labels, positive):
    encoded, found = modeling.binary_labels(pl.Series("y", values))
    assert encoded.tolist() == labels
    assert found == positive


@pytest.mark.parametrize("values", [[1, 1, 1], [1, 2, 3], [1, None, 0]])
def test_binary_labels_refuse_anything_but_two_classes_without_nulls(values):
    with pytest.raises(ContractViolation, match="exactly two values"):
        modeling.binary_labels(pl.Series("y", values))


def test_time_split_holds_out_the_newest_rows():
    frame = pl.DataFrame({"ts": [T0 + timedelta(days=d) for d in (4, 0, 3, 1, 2)], "x": range(5)})
    training, holdout, cutoff = modeling.time_split(frame, time_column="ts", holdout_fraction=0.4)
    assert training["ts"].max() < cutoff <= holdout["ts"].min()
    assert (training.height, holdout.height) == (3, 2)


def test_time_split_refuses_a_single_instant():
    frame = pl.DataFrame({"ts": [T0] * 4, "x": range(4)})
    with pytest.raises(ContractViolation, match="cannot split"):
        modeling.time_split(frame, time_column="ts", holdout_fraction=0.25)


def test_model_inputs_never_hand_nulls_to_the_encoders():
    columns = modeling.FeatureColumns(("x",), ("c",), ("t",))
    inputs = modeling.model_inputs(
        pl.DataFrame({"x": [1, None], "c": [None, "a"], "t": [None, "b c"]}), columns
    )
    assert math.isnan(inputs["x"][1])
    assert inputs["c"].tolist() == [modeling.MISSING, "a"]
    assert inputs["t"].tolist() == [modeling.MISSING, "b c"]
    with pytest.raises(ContractViolation, match="missing from the table"):
        modeling.model_inputs(pl.DataFrame({"x": [1]}), columns)


def test_classification_metrics_on_a_known_case():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.9])
    metrics = modeling.classification_metrics(labels, scores)
    assert metrics["accuracy"] == 0.5
    assert (metrics["precision"], metrics["recall"]) == (0.5, 0.5)
    assert metrics["roc_auc"] == 0.75
    assert metrics["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert modeling.confusion(labels, scores) == [[1, 1], [1, 1]]
    bands = modeling.calibration_table(labels, scores, bins=2)
    assert bands == [
        {"band": "0.0-0.5", "rows": 2, "mean_predicted": 0.25, "observed": 0.5},
        {"band": "0.5-1.0", "rows": 2, "mean_predicted": 0.75, "observed": 0.5},
    ]


@pytest.mark.parametrize(
    ("candidate", "production", "margin", "promoted", "phrase"),
    [
        (0.70, None, 0.01, True, "no model in production"),
        (0.80, 0.78, 0.01, True, "beats production"),
        (0.785, 0.78, 0.01, False, "does not beat"),
        (0.78, 0.78, 0.0, True, "beats production"),
        (0.70, 0.78, 0.01, False, "does not beat"),
        (float("nan"), 0.78, 0.01, False, "undefined"),
    ],
)
def test_promotion_needs_the_margin_over_production(
    candidate, production, margin, promoted, phrase
):
    decided, note = promotion_decision(
        {"roc_auc": candidate},
        None if production is None else {"roc_auc": production},
        metric="roc_auc",
        margin=margin,
    )
    assert decided is promoted
    assert phrase in note


def test_promotion_metric_must_exist():
    with pytest.raises(ConfigurationError, match="unknown promotion metric"):
        promotion_decision({"roc_auc": 0.5}, None, metric="auc", margin=0)


def test_registry_updates_archive_the_replaced_production_version():
    now = datetime(2024, 5, 1, tzinfo=UTC)
    old = {"model_name": "m", "version": 1, "stage": "production"}
    new = {"model_name": "m", "version": 2}
    promoted = registry_updates(new, old, promote=True, now=now)
    assert [(r["version"], r["stage"]) for r in promoted] == [(2, "production"), (1, "archived")]
    assert all(r["updated_at"] == now for r in promoted)
    kept = registry_updates(new, old, promote=False, now=now)
    assert [(r["version"], r["stage"]) for r in kept] == [(2, "staging")]


def test_versions_and_production_lookup():
    rows = pl.DataFrame({"version": [1, 2, 3], "stage": ["archived", "production", "staging"]})
    assert next_version(rows) == 4
    assert next_version(rows.clear()) == 1
    assert production_row(rows)["version"] == 2
    assert production_row(rows.filter(pl.col("stage") != "production")) is None


def test_feature_table_contract_uses_the_catalog_else_reads_any_table():
    assert feature_table_contract("gold/order_features") is ORDER_FEATURES
    ad_hoc = feature_table_contract("gold/churn")
    assert (ad_hoc.path, ad_hoc.schema) == ("gold/churn", None)
    with pytest.raises(ConfigurationError, match="not a table path"):
        feature_table_contract("nowhere/churn")


def test_plots_are_well_formed_svg():
    roc = ET.fromstring(roc_svg([0.0, 0.5, 1.0], [0.0, 0.8, 1.0], 0.65))
    assert roc.tag.endswith("svg")
    assert "AUC = 0.650" in roc_svg([0.0, 1.0], [0.0, 1.0], 0.65)
    matrix = ET.fromstring(confusion_svg([[5, 1], [2, 7]]))
    texts = [t.text for t in matrix.iter() if t.tag.endswith("text")]
    assert {"5", "1", "2", "7"} <= set(texts)


def test_report_shows_candidate_and_production_side_by_side():
    report = training_report(
        title="m v2",
        metrics={"v2": {"roc_auc": 0.8}, "v1": {"roc_auc": 0.7}},
        matrix=[[1, 2], [3, 4]],
        calibration=[{"band": "0.0-0.1", "rows": 1}],
        params={"model__C": 1.0},
        decision="promoted",
        plots={"ROC curve": "roc.svg"},
    )
    assert "| metric | v2 | v1 |" in report
    assert "| roc_auc | 0.8 | 0.7 |" in report
    assert "[ROC curve](roc.svg)" in report


@pytest.fixture(scope="module")
def candidate():
    """A candidate tuned on 90 hourly rows with one informative feature, scored on the newest 30."""
    rng = np.random.default_rng(3)
    signal = rng.normal(0, 1, 120)
    frame = pl.DataFrame(
        {
            "ts": [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(120)],
            "x": signal,
            "y": (signal + rng.normal(0, 0.5, 120) > 0).astype(np.int64),
        }
    )
    return modeling.train_candidate(
        frame,
        target="y",
        time_column="ts",
        exclude=(),
        holdout_fraction=0.25,
        seed=1,
        candidates=2,
        folds=2,
    )


def test_a_candidate_is_tuned_on_the_older_rows_and_scored_on_the_newest(candidate):
    assert (candidate.training_rows, candidate.holdout.height) == (90, 30)
    assert candidate.cutoff == datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=90)
    assert candidate.model.columns == modeling.FeatureColumns(("x",), (), ())
    metrics, scores = modeling.holdout_metrics(candidate.model, candidate.holdout)
    assert candidate.metrics == {**metrics, "cv_roc_auc": candidate.metrics["cv_roc_auc"]}
    assert candidate.scores.tolist() == scores.tolist()
    assert candidate.metrics["roc_auc"] > 0.8


def test_comparable_metrics_say_why_a_model_cannot_score_a_holdout(candidate):
    model, holdout = candidate.model, candidate.holdout
    assert modeling.comparable_metrics(model, holdout, "churned") == (
        None,
        "predicts 'y', not 'churned'",
    )
    metrics, unusable = modeling.comparable_metrics(model, holdout.drop("x"), "y")
    assert metrics is None
    assert unusable.startswith("cannot score this holdout: ")
    scored = modeling.holdout_metrics(model, holdout)[0]
    assert modeling.comparable_metrics(model, holdout, "y") == (scored, "")


def test_report_files_compare_the_candidate_with_production(candidate):
    files = report_files(
        candidate, title="m v2", version=2, production=(1, {"roc_auc": 0.5}), decision="promoted"
    )
    assert list(files) == ["report.md", "roc.svg", "confusion_matrix.svg"]
    assert "| metric | v2 (candidate) | v1 (production) |" in files["report.md"]
    assert "| roc_auc | " in files["report.md"]
    assert f"AUC = {candidate.metrics['roc_auc']:.3f}" in files["roc.svg"]
    ET.fromstring(files["confusion_matrix.svg"])
    alone = report_files(candidate, title="m v1", version=1, production=None, decision="first")
    assert "| metric | v1 (candidate) |" in alone["report.md"]


def test_a_model_saved_before_modeling_was_made_public_still_loads(local_lake, monkeypatch):
    model = modeling.TrainedModel(None, modeling.FeatureColumns(("x",), (), ()), "y", 1)
    with monkeypatch.context() as old_layout:
        old_layout.setitem(sys.modules, "flows.ml._modeling", modeling)
        for moved in (modeling.TrainedModel, modeling.FeatureColumns):
            old_layout.setattr(moved, "__module__", "flows.ml._modeling")
        saved = pickle.dumps(model, protocol=5)
    assert b"flows.ml._modeling" in saved
    storage.write_bytes("models/m/1/model.pkl", saved)
    assert load_model("models/m/1", modeling.TrainedModel) == model
