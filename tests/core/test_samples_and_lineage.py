from datetime import UTC, datetime

import pyarrow as pa
import pytest

from flows import samples
from flows.catalog import CUSTOMERS, EVENTS, ORDERS, PRODUCTS, TRANSACTIONS
from flows.core.lineage import current_run, fingerprint, stamp


@pytest.mark.parametrize(
    ("generate", "table"),
    [
        (samples.customers, CUSTOMERS),
        (samples.products, PRODUCTS),
        (samples.orders, ORDERS),
        (samples.transactions, TRANSACTIONS),
        (samples.events, EVENTS),
    ],
)
def test_sample_data_is_deterministic_and_satisfies_its_contract(generate, table):
    first, second = generate(500), generate(500)
    assert first.equals(second)
    valid, rejects = table.split(first)
    assert rejects.num_rows == 0, rejects.to_pylist()[:3]
    assert valid.num_rows == 500


def test_order_records_carry_three_malformed_rows():
    records = samples.order_records(50)
    assert len(records) == 53
    valid, rejects = ORDERS.split(pa.Table.from_pylist(records))
    assert (valid.num_rows, rejects.num_rows) == (50, 3)


def test_fingerprint_is_stable_and_separates_parts():
    assert fingerprint("a", "b") == fingerprint("a", "b")
    assert fingerprint("ab", "") != fingerprint("a", "b")


def test_stamp_adds_lineage_to_every_row():
    at = datetime(2024, 5, 1, tzinfo=UTC)
    stamped = stamp(pa.table({"x": [1, 2]}), source="s", batch_id="b", run_id="r", ingested_at=at)
    assert (
        stamped.select(["_source", "_batch_id", "_run_id", "_ingested_at"]).to_pylist()
        == [{"_source": "s", "_batch_id": "b", "_run_id": "r", "_ingested_at": at}] * 2
    )


def test_outside_a_flow_run_the_run_is_local():
    assert current_run().id == "local"
