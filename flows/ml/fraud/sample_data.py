"""Sample transactions for the zero-config run of fraud detection: one injected case per rule."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from flows import samples


def injected_fraud(first_id: int, at: datetime) -> pa.Table:
    """One case of each rule on accounts 1-3 around `at` (ids from `first_id`, in this order):

    a burst of 8 (the last 3 break the velocity rule), 12 usual amounts then one 1000x larger,
    Paris then New York 30 minutes later.
    """
    burst = [(1, 25.0, 52.52, 13.40, at + timedelta(seconds=30 * i)) for i in range(8)]
    usual = [(2, 20.0 + i, 40.42, -3.70, at - timedelta(days=12 - i)) for i in range(12)]
    spike = [*usual, (2, 20_000.0, 40.42, -3.70, at + timedelta(hours=2))]
    travel = [
        (3, 60.0, 48.86, 2.35, at + timedelta(hours=3)),  # Paris
        (3, 75.0, 40.71, -74.01, at + timedelta(hours=3, minutes=30)),  # New York, 30 min on
    ]
    rows = burst + spike + travel
    return pa.table(
        {
            "transaction_id": pa.array(range(first_id, first_id + len(rows)), pa.int64()),
            "account_id": pa.array([r[0] for r in rows], pa.int64()),
            "amount": [r[1] for r in rows],
            "merchant_category": ["online"] * len(rows),
            "latitude": [r[2] for r in rows],
            "longitude": [r[3] for r in rows],
            "occurred_at": pa.array([r[4] for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )


def sample_transactions(rows: int, seed: int) -> pa.Table:
    """Sample transactions with the injected cases 20 days in (deterministic)."""
    base = samples.transactions(rows, seed=seed)
    return pa.concat_tables([base, injected_fraud(rows + 1, samples.EPOCH + timedelta(days=20))])
