"""Generated inputs, written once per scale under the cache folder and reused by every case.

Each generator runs in a subprocess (`Context.prepare`), writes its folder under a temporary name
and renames it when complete, so an interrupted run never leaves a half-written data set behind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from bench.harness import MANIFEST
from flows import samples

MALFORMED_SHARE = 0.001
"""Share of rows with a non-numeric amount, the same again with an unknown status."""
DUPLICATE_SHARE = 0.005
"""Share of rows delivered twice (exact duplicates), which every path must remove."""
CUSTOMERS = 1_000_000
PRODUCTS = 100_000
LANDING_ORDERS = "landing/orders"
"""Where the S3 data pipeline finds deliveries of the orders source, under the lake root."""


def built(params: dict[str, Any], build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Build `params["folder"]` under a temporary name, write its manifest, then rename it."""
    folder = Path(params["folder"])
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    partial.mkdir(parents=True)
    manifest = build(partial)
    (partial / MANIFEST).write_text(json.dumps(manifest))
    os.replace(partial, folder)
    return manifest


def landing_orders(params: dict[str, Any]) -> dict[str, Any]:
    """Landing CSV files of orders as a source delivers them: some malformed rows, some repeats.

    Laid out as `landing/orders/*.csv`, the layout the S3 data pipeline reads under a lake root;
    order ids start at `offset` + 1, so a later delivery can add new orders.
    """
    rows, per_file = int(params["rows"]), int(params["rows_per_file"])
    offset = int(params.get("offset", 0))

    def build(target: Path) -> dict[str, Any]:
        folder = target / LANDING_ORDERS
        folder.mkdir(parents=True)
        files, total = [], 0
        for index, start in enumerate(range(0, rows, per_file)):
            first = offset + start
            delivered = orders_delivery(
                min(per_file, rows - start), offset=first, seed=first + index
            )
            path = folder / f"orders-{first:011d}.csv"
            pcsv.write_csv(delivered, path)
            files.append(str(path.relative_to(target)))
            total += delivered.num_rows
        return {"files": files, "rows": total, "bytes": _size(target)}

    return built(params, build)


def orders_delivery(rows: int, *, offset: int, seed: int) -> pa.Table:
    """`rows` orders (ids from offset+1) with malformed values and exact duplicates mixed in."""
    rng = np.random.default_rng(1_000 + seed)
    orders = samples.orders(
        rows, seed=1_000 + seed, customer_count=CUSTOMERS, product_count=PRODUCTS
    )
    orders = orders.set_column(0, "order_id", pc.add(orders["order_id"], offset))
    amount = pc.cast(orders["amount"], pa.string())
    status = orders["status"]
    bad = max(1, int(rows * MALFORMED_SHARE))
    amount = _replaced(amount, rng.choice(rows, bad, replace=False), "twelve")
    status = _replaced(status, rng.choice(rows, bad, replace=False), "lost")
    delivered = orders.set_column(4, "amount", amount).set_column(5, "status", status)
    repeats = rng.choice(rows, max(1, int(rows * DUPLICATE_SHARE)), replace=False)
    return pa.concat_tables([delivered, delivered.take(np.sort(repeats))])


def _replaced(column: pa.ChunkedArray, positions: np.ndarray, value: str) -> pa.ChunkedArray:
    mask = np.zeros(len(column), dtype=bool)
    mask[positions] = True
    return pc.if_else(pa.array(mask), pa.scalar(value, column.type), column)


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def clean_orders(chunk: int, offset: int, rows: int) -> pa.Table:
    """Chunk `chunk` of a clean orders table: `rows` orders with ids from offset + 1."""
    orders = samples.orders(
        rows, seed=2_000 + chunk, customer_count=CUSTOMERS, product_count=PRODUCTS
    )
    return orders.set_column(0, "order_id", pc.add(orders["order_id"], offset))


def _chunks(rows: int, per_chunk: int = 1_000_000) -> list[tuple[int, int, int]]:
    """(index, offset, rows) of each chunk."""
    starts = range(0, rows, per_chunk)
    return [(i, start, min(per_chunk, rows - start)) for i, start in enumerate(starts)]


def merge_target(params: dict[str, Any]) -> dict[str, Any]:
    """silver/orders with `rows` clean orders, written in 1M-row commits through flows.core."""
    rows = int(params["rows"])

    def build(target: Path) -> dict[str, Any]:
        from flows.catalog import ORDERS
        from flows.core import lake

        os.environ["LAKE_URI"] = str(target / "lake")
        for chunk in _chunks(rows):
            lake.append(ORDERS, clean_orders(*chunk))
        return {"rows": rows, "bytes": _size(target)}

    return built(params, build)


def order_updates(rows: int, share: float) -> pa.Table:
    """`share` of the orders of `merge_target(rows)`, chosen uniformly, delivered a day later."""
    rng = np.random.default_rng(99)
    picked = []
    for chunk in _chunks(rows):
        orders = clean_orders(*chunk)
        size = chunk[2]
        chosen = np.sort(rng.choice(size, max(1, int(size * share)), replace=False))
        picked.append(orders.take(chosen))
    updates = pa.concat_tables(picked)
    later = pc.add(updates["updated_at"], pa.scalar(86_400_000_000, pa.duration("us")))
    return (
        updates.set_column(4, "amount", pc.multiply(updates["amount"], 1.1))
        .set_column(5, "status", pa.repeat(pa.scalar("delivered"), updates.num_rows))
        .set_column(7, "updated_at", later)
    )


def many_commits(params: dict[str, Any]) -> dict[str, Any]:
    """silver/events after `commits` small appends through flows.core (one commit each)."""
    commits, per_commit = int(params["commits"]), int(params["rows_per_commit"])

    def build(target: Path) -> dict[str, Any]:
        from flows.catalog import EVENTS
        from flows.core import lake

        os.environ["LAKE_URI"] = str(target / "lake")
        for commit in range(commits):
            events = samples.events(per_commit, seed=commit)
            offset = pc.add(events["event_id"], commit * per_commit)
            lake.append(EVENTS, events.set_column(0, "event_id", offset))
        return {"commits": commits, "rows": commits * per_commit}

    return built(params, build)


def orders_with_violations(rows: int) -> pa.Table:
    """Typed orders (`clean_orders` chunks) with 0.1% unknown statuses and 0.1% negative amounts."""
    rng = np.random.default_rng(7)
    orders = pa.concat_tables([clean_orders(*chunk) for chunk in _chunks(rows)])
    bad = max(1, int(rows * MALFORMED_SHARE))
    status = _replaced(orders["status"], rng.choice(rows, bad, replace=False), "lost")
    negative = np.zeros(rows, dtype=bool)
    negative[rng.choice(rows, bad, replace=False)] = True
    amount = pc.if_else(pa.array(negative), pc.negate(orders["amount"]), orders["amount"])
    return orders.set_column(4, "amount", amount).set_column(5, "status", status)
