"""Every table in the lake: each category's declarations, and the physical tables they imply.

A category declares the tables it owns in `flows/<category>/tables.py`, with their allowed values
and monitor checks beside them; this module aggregates them. A flow reaches another category's
tables only through here, and `physical_tables()` is the one list that maintenance, erasure and
the quality monitor walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast, get_args

from flows.core.contracts import Layer, Table
from flows.core.errors import ConfigurationError
from flows.etl import tables as etl
from flows.etl.tables import (
    CATEGORIES,
    CUSTOMER_LIFETIME_VALUE,
    CUSTOMERS,
    DAILY_CATEGORY_REVENUE,
    ENRICHED_EVENTS,
    ERASURES,
    EVENT_TYPES,
    EVENTS,
    INGEST_STATE,
    LANDING_FILE_STATUSES,
    LANDING_FILES,
    MERCHANT_CATEGORIES,
    ORDER_STATUSES,
    ORDERS,
    PRODUCTS,
    SCORED_TRANSACTIONS,
    SEGMENTS,
    TRANSACTIONS,
)
from flows.examples import tables as examples
from flows.examples.tables import (
    EXAMPLE_AWS_ORDERS,
    EXAMPLE_CUSTOMERS,
    EXAMPLE_DAILY_ORDER_TOTALS,
    EXAMPLE_ORDERS,
)
from flows.ml import tables as ml
from flows.ml.tables import (
    FEATURE_METADATA,
    FRAUD_ACCOUNT_STATE,
    FRAUD_ALERTS,
    FRAUD_RULES,
    MODEL_REGISTRY,
    MODEL_STAGES,
    ORDER_FEATURES,
    PREDICTIONS,
)
from flows.monitoring import tables as monitoring
from flows.monitoring.tables import (
    EVENT_WINDOW_METRICS,
    EVENT_WINDOW_TOP_PRODUCTS,
    LATE_EVENTS,
    METRIC_KINDS,
    PIPELINE_METRICS,
    QUALITY_RESULTS,
    SALES_ANOMALIES,
    SEVERITIES,
    STREAM_OFFSETS,
)

CATALOG: tuple[Table, ...] = (*etl.TABLES, *examples.TABLES, *ml.TABLES, *monitoring.TABLES)
"""Every declared table, each once."""


def physical_tables() -> tuple[Table, ...]:
    """Every table a flow writes: each declaration, and an ingested one's bronze and quarantine."""
    return tuple(physical for declared in CATALOG for physical in declared.physical_tables())


def physical_table(path: str) -> Table:
    """The physical table at `path` (e.g. `bronze/orders_api`); an unknown path lists the known."""
    known = {table.path: table for table in physical_tables()}
    if path not in known:
        raise ConfigurationError(f"unknown table {path!r}: choose from {', '.join(sorted(known))}")
    return known[path]


def table_at(path: str) -> Table:
    """The physical table at `path`, or a schema-on-read one for any other `<layer>/<name>`."""
    try:
        return physical_table(path)
    except ConfigurationError:
        layer, _, name = path.partition("/")
        if layer not in get_args(Layer) or not name:
            raise
        return Table(name, cast(Layer, layer))


def selected_tables(paths: Sequence[str] | None) -> list[Table]:
    """The physical tables named by `paths`, each once in the order given; all when None."""
    if paths is None:
        return list(physical_tables())
    return [physical_table(path) for path in dict.fromkeys(paths)]


def landing_sources() -> dict[str, Table]:
    """The tables raw deliveries feed (`ingested=True`), by name: `landing/<name>/` is a source."""
    return {table.name: table for table in CATALOG if table.ingested}


def ingested_table(name: str) -> Table:
    """The declared table called `name` that raw deliveries feed; an unknown name lists them."""
    ingested = landing_sources()
    if name not in ingested:
        raise ConfigurationError(
            f"{name!r} is not fed by raw deliveries: choose one of {sorted(ingested)}"
        )
    return ingested[name]


__all__ = [
    "CATALOG",
    "CATEGORIES",
    "CUSTOMERS",
    "CUSTOMER_LIFETIME_VALUE",
    "DAILY_CATEGORY_REVENUE",
    "ENRICHED_EVENTS",
    "ERASURES",
    "EVENTS",
    "EVENT_TYPES",
    "EVENT_WINDOW_METRICS",
    "EVENT_WINDOW_TOP_PRODUCTS",
    "EXAMPLE_AWS_ORDERS",
    "EXAMPLE_CUSTOMERS",
    "EXAMPLE_DAILY_ORDER_TOTALS",
    "EXAMPLE_ORDERS",
    "FEATURE_METADATA",
    "FRAUD_ACCOUNT_STATE",
    "FRAUD_ALERTS",
    "FRAUD_RULES",
    "INGEST_STATE",
    "LANDING_FILES",
    "LANDING_FILE_STATUSES",
    "LATE_EVENTS",
    "MERCHANT_CATEGORIES",
    "METRIC_KINDS",
    "MODEL_REGISTRY",
    "MODEL_STAGES",
    "ORDERS",
    "ORDER_FEATURES",
    "ORDER_STATUSES",
    "PIPELINE_METRICS",
    "PREDICTIONS",
    "PRODUCTS",
    "QUALITY_RESULTS",
    "SALES_ANOMALIES",
    "SCORED_TRANSACTIONS",
    "SEGMENTS",
    "SEVERITIES",
    "STREAM_OFFSETS",
    "TRANSACTIONS",
    "ingested_table",
    "landing_sources",
    "physical_table",
    "physical_tables",
    "selected_tables",
    "table_at",
]
