"""Case 9 work: MERGE a share of updated orders into silver/orders, or rewrite the whole table."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import polars as pl

from bench.data import order_updates
from flows.catalog import ORDERS
from flows.core import lake


def merge(params: dict[str, Any]) -> dict[str, Any]:
    """lake.merge: one commit that rewrites only the files holding updated keys."""
    updates = order_updates(int(params["rows"]), float(params["share"]))
    started = perf_counter()
    result = lake.merge(ORDERS, updates)
    seconds = perf_counter() - started
    return {
        "seconds": seconds,
        "rows": updates.num_rows,
        "updated": result.updated,
        "inserted": result.inserted,
        "table_rows": lake.read(ORDERS, columns=["order_id"]).height,
    }


def rewrite(params: dict[str, Any]) -> dict[str, Any]:
    """The naive alternative: read the table, replace the updated rows, overwrite everything."""
    updates = pl.from_arrow(order_updates(int(params["rows"]), float(params["share"])))
    assert isinstance(updates, pl.DataFrame)
    started = perf_counter()
    current = lake.read(ORDERS)
    kept = current.join(updates.select("order_id"), on="order_id", how="anti")
    lake.overwrite(ORDERS, pl.concat([kept, updates]))
    seconds = perf_counter() - started
    return {
        "seconds": seconds,
        "rows": updates.height,
        "table_rows": lake.read(ORDERS, columns=["order_id"]).height,
    }
