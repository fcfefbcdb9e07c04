"""The model registry: artifacts under models/<name>/<version>/, rows in _ops/model_registry."""

from __future__ import annotations

import io
import json
import math
import pickle
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any, TypeVar, cast, get_args

import polars as pl
import pyarrow as pa

from flows.catalog import CATALOG, MODEL_REGISTRY
from flows.core import lake, storage
from flows.core.contracts import Layer, Table
from flows.core.errors import ConfigurationError
from flows.core.settings import get_settings

MODEL_FILE = "model.pkl"
REVISION_FILE = "REVISION"
"""Written into a release by deploy/build-release.sh: the commit it was built from."""
T = TypeVar("T")
MOVED_MODULES = {"flows.ml._modeling": "flows.ml.modeling"}
"""Where classes pickled into saved models live now, so that models saved before a move load."""


def feature_table_contract(path: str) -> Table:
    """The catalog's contract for `layer/name`, or a schema-on-read one for any other table."""
    for table in CATALOG:
        if table.path == path:
            return table
    layer, _, name = path.partition("/")
    if layer not in get_args(Layer) or not name:
        raise ConfigurationError(
            f"{path!r} is not a table path: use <layer>/<name>, layer one of {get_args(Layer)}"
        )
    return Table(name, cast(Layer, layer))


def default_model_name(feature_table: str, target: str) -> str:
    """`<table name>.<target>`, e.g. `order_features.is_large_order`."""
    return f"{feature_table.rsplit('/', 1)[-1]}.{target}"


def model_prefix(name: str, version: int) -> str:
    """Where a model version's files live, relative to the lake root."""
    return f"models/{name}/{version}"


def save_model(model: object, prefix: str) -> str:
    """Pickle a fitted model to `<prefix>/model.pkl`; returns its location."""
    return storage.write_bytes(f"{prefix}/{MODEL_FILE}", pickle.dumps(model, protocol=5))


def load_model(prefix: str, expected: type[T]) -> T:
    """The fitted model saved under `prefix` by save_model (our own lake's artifact)."""
    loaded = _ModelUnpickler(io.BytesIO(storage.read_bytes(f"{prefix}/{MODEL_FILE}"))).load()
    if not isinstance(loaded, expected):
        raise ConfigurationError(f"{prefix}/{MODEL_FILE} does not hold a {expected.__name__}")
    return loaded


class _ModelUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


@dataclass(frozen=True)
class ModelVersion:
    """What the registry records about one trained version (JSON columns as Python values)."""

    model_name: str
    version: int
    feature_table: str
    target: str | None
    time_column: str | None
    key_columns: tuple[str, ...]
    features: Any
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]
    input_versions: Mapping[str, int]
    seed: int
    note: str

    @property
    def prefix(self) -> str:
        return model_prefix(self.model_name, self.version)

    def row(self, created_at: datetime) -> dict[str, Any]:
        """The MODEL_REGISTRY row, stage and updated_at left to registry_updates."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "feature_table": self.feature_table,
            "target": self.target,
            "time_column": self.time_column,
            "key_columns": as_json(list(self.key_columns)),
            "features": as_json(self.features),
            "params": as_json(self.params),
            "metrics": as_json(self.metrics),
            "input_versions": as_json(self.input_versions),
            "code_version": code_version(),
            "seed": self.seed,
            "artifact_uri": self.prefix,
            "promotion_note": self.note,
            "created_at": created_at,
        }


def write_registry(rows: list[dict[str, Any]]) -> lake.WriteResult:
    """Registry rows in one MERGE commit."""
    return lake.merge(MODEL_REGISTRY, pl.DataFrame(rows))


def registry_rows(model_name: str) -> pl.DataFrame:
    """Every registered version of `model_name` (empty before the first one)."""
    if not lake.exists(MODEL_REGISTRY):
        empty = pl.from_arrow(cast(pa.Schema, MODEL_REGISTRY.schema).empty_table())
        assert isinstance(empty, pl.DataFrame)
        return empty
    return lake.read(MODEL_REGISTRY, where=pl.col("model_name") == model_name)


def next_version(rows: pl.DataFrame) -> int:
    return 1 if rows.is_empty() else int(rows.get_column("version").max()) + 1  # type: ignore[arg-type]


def recorded_key_columns(row: Mapping[str, Any]) -> list[str]:
    """The key columns a registry row recorded (none for a version registered before they were)."""
    recorded = row.get("key_columns")
    return [str(name) for name in json.loads(recorded)] if recorded else []


def production_row(rows: pl.DataFrame) -> dict[str, Any] | None:
    """The version currently in production, if any (the newest one, should there be several)."""
    production = rows.filter(pl.col("stage") == "production").sort("version")
    return production.row(-1, named=True) if production.height else None


def code_version() -> str:
    """The release's commit (its REVISION file), else the checkout's, else the package version."""
    project = get_settings().project_dir
    revision = project / REVISION_FILE
    if revision.is_file():
        return f"git:{revision.read_text().strip()}"
    try:
        sha = subprocess.run(
            # The checkout may belong to another user (root on the host): trust it by name.
            ["git", "-c", f"safe.directory={project}", "rev-parse", "HEAD"],
            cwd=project,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return f"git:{sha}"
    except (OSError, subprocess.SubprocessError):
        try:
            return f"datalake-flows=={package_version('datalake-flows')}"
        except PackageNotFoundError:
            return "unknown"


def promotion_decision(
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    *,
    metric: str,
    margin: float,
) -> tuple[bool, str]:
    """Promote only a first model, or one that beats production by `margin` on the same holdout."""
    if metric not in candidate:
        raise ConfigurationError(f"unknown promotion metric {metric!r}; one of {sorted(candidate)}")
    if production is None:
        return True, "no model in production yet: promoted"
    ours, theirs = candidate[metric], production[metric]
    if math.isnan(ours):
        return False, f"{metric} is undefined on this holdout: kept in staging"
    if ours >= theirs + margin:
        return True, f"{metric} {ours:.4f} beats production {theirs:.4f} by >= {margin}: promoted"
    return False, f"{metric} {ours:.4f} does not beat production {theirs:.4f} by {margin}: staging"


def registry_updates(
    candidate: Mapping[str, Any],
    production: Mapping[str, Any] | None,
    *,
    promote: bool,
    now: datetime,
) -> list[dict[str, Any]]:
    """The rows one MERGE writes: the new version, and the old production one if it is replaced."""
    rows = [{**candidate, "stage": "production" if promote else "staging", "updated_at": now}]
    if promote and production is not None:
        rows.append({**production, "stage": "archived", "updated_at": now})
    return rows


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
