"""Deterministic sample deliveries for landing/, so the zero-config run has files to ingest.

One delivery per format (CSV, gzip CSV, JSON lines, JSON array, Parquet), late updates that must
win, and a few malformed rows that must end in quarantine.
"""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flows import samples
from flows.core import storage
from flows.core.paths import safe_relative

MALFORMED_ORDERS_CSV = (
    b"order_id,customer_id,product_id,quantity,amount,status,order_date,updated_at\n"
    b"990001,1,1,2,twelve,placed,2024-03-01,2024-03-01T10:00:00+00:00\n"
    b",2,3,1,19.99,shipped,2024-03-01,2024-03-01T11:00:00+00:00\n"
    b"990003,3,2,1,-50.00,placed,2024-03-02,2024-03-02T09:30:00+00:00\n"
    b"990004,4,2,1,10.00,placed\n"
)


def _csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def _json_lines(table: pa.Table) -> bytes:
    return "".join(json.dumps(row, default=str) + "\n" for row in table.to_pylist()).encode()


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def late_updates(orders: pa.Table, every: int = 10) -> pa.Table:
    """Every `every`-th order shipped a day later: a later `updated_at` that must win in silver."""
    picked = orders.take(list(range(0, orders.num_rows, every)))
    later = pc.add(picked.column("updated_at"), pa.scalar(86_400_000_000, pa.duration("us")))
    return picked.set_column(
        picked.schema.get_field_index("status"), "status", pa.repeat("shipped", picked.num_rows)
    ).set_column(picked.schema.get_field_index("updated_at"), "updated_at", later)


def sample_files(rows: int = 2_000, seed: int = 42) -> dict[str, bytes]:
    """File name (under landing/) -> content; the same arguments give the same bytes."""
    orders = samples.orders(rows, seed=seed)
    half = rows // 2
    return {
        "customers/customers.csv": _csv(samples.customers(1_000)),
        "products/products.jsonl": _json_lines(samples.products(200)),
        "orders/2024-01-orders.csv.gz": gzip.compress(_csv(orders.slice(0, half)), mtime=0),
        "orders/2024-02-orders.parquet": _parquet(orders.slice(half)),
        "orders/2024-03-status-updates.json": json.dumps(
            late_updates(orders).to_pylist(), default=str
        ).encode(),
        "orders/2024-03-malformed.csv": MALFORMED_ORDERS_CSV,
    }


def seed_landing(landing: str = "landing", rows: int = 2_000, seed: int = 42) -> list[str]:
    """Write the sample files under `landing/` and return their paths."""
    prefix = safe_relative(landing)
    return [
        storage.write_bytes(f"{prefix}/{name}", content)
        for name, content in sample_files(rows, seed).items()
    ]
