"""Model building blocks: column detection, the scikit-learn pipeline, split, search, metrics.

Pure functions (no lake I/O). The fitted `Pipeline` carries all preprocessing (imputation,
scaling, one-hot, TF-IDF), so inference only ever calls `predict_proba` on it, never `fit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from sklearn.compose import ColumnTransformer
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (enables the import below)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import (
    BaseCrossValidator,
    HalvingRandomSearchCV,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from flows.core.errors import ContractViolation

TEXT_SPACE_SHARE = 0.5
"""A string column is text (TF-IDF) when at least this share of its values has a space."""
MISSING = "__missing__"


@dataclass(frozen=True)
class FeatureColumns:
    """The columns a model uses, by how they are encoded."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    text: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.numeric + self.categorical + self.text


@dataclass
class TrainedModel:
    """What is saved under models/<name>/<version>/: everything inference needs, already fitted."""

    pipeline: Pipeline
    columns: FeatureColumns
    target: str
    positive_class: Any
    threshold: float = 0.5


@dataclass(frozen=True)
class Candidate:
    """A model tuned on most rows of a table and scored on the others (the holdout): the newest
    ones when the table has a time column, else a seeded stratified random share."""

    model: TrainedModel
    params: dict[str, Any]
    metrics: dict[str, float]
    """Holdout metrics, plus the search's cross-validated ROC AUC as `cv_roc_auc`."""
    training_rows: int
    holdout: pl.DataFrame
    holdout_labels: np.ndarray[Any, Any]
    scores: np.ndarray[Any, Any]
    """The model's scores on the holdout rows."""
    cutoff: datetime | None
    """The holdout is every row at or after this instant; None for a random holdout."""
    key_columns: tuple[str, ...] = ()
    """What identifies a row of the table, for inference (`row_key_columns`)."""

    @property
    def holdout_from(self) -> str:
        """Where the holdout starts: an instant (ISO 8601), or that it is a random share."""
        return self.cutoff.isoformat() if self.cutoff else "a random split"


def is_identifier(name: str) -> bool:
    """Ids carry no signal a model should learn (`id`, `order_id`, ...)."""
    return name == "id" or name.endswith("_id")


def detect_columns(
    frame: pl.DataFrame, *, target: str, time_column: str | None, exclude: tuple[str, ...] = ()
) -> FeatureColumns:
    """Numeric, categorical and text feature columns of any table (ids and the target skipped)."""
    for flag, name in (("--target", target), ("--time-column", time_column)):
        if name is not None and name not in frame.columns:
            raise ContractViolation(f"{flag} {name!r} is not in the table; it has {frame.columns}")
    numeric: list[str] = []
    categorical: list[str] = []
    text: list[str] = []
    for name, dtype in frame.schema.items():
        if name in (target, time_column, *exclude) or is_identifier(name):
            continue
        if dtype.is_numeric() or dtype == pl.Boolean:
            numeric.append(name)
        elif dtype in (pl.String, pl.Categorical, pl.Enum):
            values = frame.get_column(name).cast(pl.String).drop_nulls()
            spaced = float(values.str.contains(" ", literal=True).sum()) / max(len(values), 1)
            (text if spaced >= TEXT_SPACE_SHARE else categorical).append(name)
    if not numeric + categorical + text:
        raise ContractViolation(
            f"no usable feature columns besides --target {target!r} and --time-column"
            f" {time_column!r}"
        )
    return FeatureColumns(tuple(numeric), tuple(categorical), tuple(text))


def model_inputs(frame: pl.DataFrame, columns: FeatureColumns) -> pd.DataFrame:
    """The pandas frame the pipeline sees: numbers as float (null = NaN), strings never null.

    A missing string becomes a token of its own, so even a text column without values has a
    vocabulary to fit.
    """
    missing = [name for name in columns.all if name not in frame.columns]
    if missing:
        raise ContractViolation(f"feature column(s) {missing} missing from the table")
    return frame.select(
        *(pl.col(n).cast(pl.Float64) for n in columns.numeric),
        *(pl.col(n).cast(pl.String).fill_null(MISSING) for n in columns.categorical),
        *(pl.col(n).cast(pl.String).fill_null(MISSING) for n in columns.text),
    ).to_pandas()


def binary_labels(values: pl.Series) -> tuple[np.ndarray[Any, Any], Any]:
    """0/1 labels and the positive class (the larger of exactly two values)."""
    classes = sorted(values.drop_nulls().unique().to_list())
    if len(classes) != 2 or values.null_count():
        raise ContractViolation(
            f"target {values.name!r} must have exactly two values and no nulls;"
            f" found {classes[:5]} and {values.null_count()} null(s)"
        )
    return (values == classes[1]).to_numpy().astype(np.int64), classes[1]


def time_split(
    frame: pl.DataFrame, *, time_column: str, holdout_fraction: float
) -> tuple[pl.DataFrame, pl.DataFrame, datetime]:
    """(training rows, holdout rows, cutoff): the holdout is everything at or after the cutoff."""
    ordered = frame.sort([time_column, *(c for c in frame.columns if c != time_column)])
    cutoff = ordered.get_column(time_column)[int(ordered.height * (1 - holdout_fraction))]
    training = ordered.filter(pl.col(time_column) < cutoff)
    holdout = ordered.filter(pl.col(time_column) >= cutoff)
    if training.is_empty() or holdout.is_empty():
        raise ContractViolation(
            f"cannot split {frame.height} rows by {time_column!r} into training and holdout"
        )
    return training, holdout, cutoff


def random_split(
    frame: pl.DataFrame, *, target: str, holdout_fraction: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(training rows, holdout rows): a seeded random share, each class held out in proportion."""
    labels, _ = binary_labels(frame.get_column(target))
    try:
        training, holdout = train_test_split(
            np.arange(frame.height), test_size=holdout_fraction, random_state=seed, stratify=labels
        )
    except ValueError as error:
        raise ContractViolation(
            f"cannot hold out {holdout_fraction} of {frame.height} rows per class: {error}"
        ) from error
    return frame[np.sort(training)], frame[np.sort(holdout)]


def row_key_columns(
    frame: pl.DataFrame, *, given: Sequence[str], declared: Sequence[str], features: FeatureColumns
) -> tuple[str, ...]:
    """What identifies a row for inference: `--key-columns`, else the table's declared key, else
    its id columns when they are unique together, else the feature values themselves."""
    absent = [name for name in given if name not in frame.columns]
    if absent:
        raise ContractViolation(f"--key-columns {absent} not in the table; it has {frame.columns}")
    ids = [name for name in frame.columns if is_identifier(name)]
    unique_ids = bool(ids) and frame.select(ids).is_unique().all()
    return tuple(given or declared or (ids if unique_ids else features.all))


def model_pipeline(columns: FeatureColumns, seed: int) -> Pipeline:
    """Preprocessing (fitted with the model) and a logistic regression."""
    transformers: list[tuple[str, Any, Any]] = []
    if columns.numeric:
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median", add_indicator=True)),
             ("scale", StandardScaler())]
        )  # fmt: skip
        transformers.append(("numeric", numeric, list(columns.numeric)))
    if columns.categorical:
        onehot = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5)
        transformers.append(("categorical", onehot, list(columns.categorical)))
    transformers += [
        (f"text_{name}", TfidfVectorizer(max_features=200), name) for name in columns.text
    ]
    classifier = LogisticRegression(solver="newton-cholesky", max_iter=200, random_state=seed)
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("model", classifier)])


def tuned_model(
    inputs: pd.DataFrame,
    labels: np.ndarray[Any, Any],
    columns: FeatureColumns,
    *,
    seed: int,
    candidates: int,
    folds: int,
    in_time_order: bool,
) -> tuple[Pipeline, dict[str, Any], float]:
    """Successive-halving random search over time-ordered folds (rows in time order), else
    seeded stratified ones: (best pipeline, params, CV AUC)."""
    cv: BaseCrossValidator | TimeSeriesSplit = (
        TimeSeriesSplit(n_splits=folds)
        if in_time_order
        else StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    )
    search = HalvingRandomSearchCV(
        model_pipeline(columns, seed),
        {
            "model__C": [float(c) for c in np.logspace(-3, 2, 11)],
            "model__class_weight": [None, "balanced"],
        },
        n_candidates=candidates,
        factor=2,
        min_resources="exhaust",
        cv=cv,
        scoring="roc_auc",
        random_state=seed,
        n_jobs=1,
        error_score="raise",
    )
    search.fit(inputs, labels)
    params = {k: _plain(v) for k, v in sorted(search.best_params_.items())}
    return search.best_estimator_, params, float(search.best_score_)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def probabilities(model: TrainedModel, frame: pl.DataFrame) -> np.ndarray[Any, Any]:
    """P(positive class) for each row, from the fitted pipeline (never refitted)."""
    scores = model.pipeline.predict_proba(model_inputs(frame, model.columns))[:, 1]
    return np.asarray(scores, dtype=np.float64)


def classification_metrics(
    labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC AUC and calibration (Brier, log loss) on one set."""
    predicted = (scores >= threshold).astype(np.int64)
    both_classes = len(np.unique(labels)) == 2
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(labels, scores)),
        "log_loss": float(log_loss(labels, scores, labels=[0, 1])),
        "rows": float(len(labels)),
        "positive_share": float(np.mean(labels)) if len(labels) else float("nan"),
    }


def holdout_metrics(
    model: TrainedModel, holdout: pl.DataFrame
) -> tuple[dict[str, float], np.ndarray[Any, Any]]:
    """Metrics of `model` on `holdout`, and its scores there."""
    labels, _ = binary_labels(holdout.get_column(model.target))
    scores = probabilities(model, holdout)
    return classification_metrics(labels, scores, model.threshold), scores


def comparable_metrics(
    model: TrainedModel, holdout: pl.DataFrame, target: str
) -> tuple[dict[str, float] | None, str]:
    """`model`'s metrics on another model's `target` holdout, or why it cannot be scored there."""
    if model.target != target:
        return None, f"predicts {model.target!r}, not {target!r}"
    try:
        return holdout_metrics(model, holdout)[0], ""
    except (ContractViolation, KeyError, ValueError) as error:
        return None, f"cannot score this holdout: {error}"


def train_candidate(
    frame: pl.DataFrame,
    *,
    target: str,
    time_column: str | None,
    exclude: tuple[str, ...],
    holdout_fraction: float,
    seed: int,
    candidates: int,
    folds: int,
    key_columns: Sequence[str] = (),
    declared_key: Sequence[str] = (),
) -> Candidate:
    """Detect the feature and key columns, hold out the newest rows (a random share without a time
    column), tune on the rest, score the holdout."""
    columns = detect_columns(frame, target=target, time_column=time_column, exclude=exclude)
    cutoff: datetime | None = None
    if time_column is None:
        training, holdout = random_split(
            frame, target=target, holdout_fraction=holdout_fraction, seed=seed
        )
    else:
        training, holdout, cutoff = time_split(
            frame, time_column=time_column, holdout_fraction=holdout_fraction
        )
    labels, positive = binary_labels(training.get_column(target))
    pipeline, params, cv_auc = tuned_model(
        model_inputs(training, columns),
        labels,
        columns,
        seed=seed,
        candidates=candidates,
        folds=folds,
        in_time_order=time_column is not None,
    )
    model = TrainedModel(pipeline, columns, target, positive)
    metrics, scores = holdout_metrics(model, holdout)
    holdout_labels, _ = binary_labels(holdout.get_column(target))
    return Candidate(
        model=model,
        params=params,
        metrics={**metrics, "cv_roc_auc": cv_auc},
        training_rows=training.height,
        holdout=holdout,
        holdout_labels=holdout_labels,
        scores=scores,
        cutoff=cutoff,
        key_columns=row_key_columns(
            frame, given=key_columns, declared=declared_key, features=columns
        ),
    )


def calibration_table(
    labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], bins: int = 10
) -> list[dict[str, Any]]:
    """Mean predicted probability vs observed positive share, per score decile band."""
    edges = np.linspace(0, 1, bins + 1)
    band = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    return [
        {
            "band": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
            "rows": int(np.sum(band == b)),
            "mean_predicted": float(np.mean(scores[band == b])),
            "observed": float(np.mean(labels[band == b])),
        }
        for b in range(bins)
        if np.any(band == b)
    ]


def confusion(
    labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], threshold: float = 0.5
) -> list[list[int]]:
    """[[TN, FP], [FN, TP]]."""
    matrix = confusion_matrix(labels, (scores >= threshold).astype(np.int64), labels=[0, 1])
    return [[int(v) for v in row] for row in matrix]


def roc_points(
    labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]
) -> tuple[list[float], list[float]]:
    """(false positive rates, true positive rates) of the ROC curve."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return [float(v) for v in fpr], [float(v) for v in tpr]
