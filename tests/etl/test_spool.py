"""A delivery's conformed rows from its parse to silver: the spool and the one-pass ingest."""

import pyarrow as pa
import pytest

from flows.catalog import ORDERS
from flows.core import lake, storage
from flows.etl.s3_pipeline import spool as spools
from flows.etl.s3_pipeline.landing import text_schema
from flows.etl.s3_pipeline.layers import conform_file, ingest_file
from flows.etl.s3_pipeline.spool import Spool, spooled, teed
from flows.etl.s3_pipeline.transforms import conformed, landing_files
from tests.etl.test_s3_data_pipeline_bad_input import csv_bytes, order_line

COLUMNS = ["order_id", "customer_id", "product_id", "quantity", "amount", "status",
           "order_date", "updated_at"]  # fmt: skip


def bronze(*lines: str) -> pa.RecordBatch:
    """Order lines as bronze text rows (no parse errors)."""
    values = [line.split(",") for line in lines]
    columns = {name: [row[i] for row in values] for i, name in enumerate(COLUMNS)}
    return pa.RecordBatch.from_pydict(
        {**columns, "_error": [None] * len(lines), "_raw": [None] * len(lines)},
        schema=text_schema(COLUMNS),
    )


BATCHES = [
    bronze(order_line(1), order_line(2, amount="-5")),
    bronze(order_line(3, status="lost"), order_line(4)),
    bronze(order_line(5)),
]


def test_a_spool_holds_what_conforming_all_rows_at_once_gives():
    spool = spooled(ORDERS, BATCHES, batch_rows=2)
    valid, rejects = conformed(ORDERS, pa.Table.from_batches(BATCHES))
    try:
        assert spool.valid_rows == 3
        assert spool.valid().read_all() == valid
        assert spool.valid(["order_id"]).read_all().column_names == ["order_id"]
        assert spool.rejects().select(["order_id", "_reason"]) == rejects.select(
            ["order_id", "_reason"]
        )
    finally:
        spool.discard()


def test_a_discarded_spool_leaves_no_file():
    spool = spooled(ORDERS, BATCHES, batch_rows=10)
    path = spool._path
    assert path.exists()
    spool.discard()
    assert not path.exists()


def test_a_batch_the_spool_cannot_take_stops_the_spooling_not_the_stream():
    spool = Spool(ORDERS, batch_rows=1)
    broken = pa.RecordBatch.from_pydict({"other": ["x"]})  # no contract columns at all
    failures: list[BaseException] = []
    passed = list(teed([BATCHES[0], broken, BATCHES[1]], spool, failures))
    assert passed == [BATCHES[0], broken, BATCHES[1]]
    assert len(failures) == 1
    spool.discard()


def test_a_spool_is_taken_once():
    spool = spooled(ORDERS, BATCHES, batch_rows=10)
    spools.keep("lake/bronze/orders", "b1", spool)
    assert spools.take("lake/bronze/orders", "b1") is spool
    assert spools.take("lake/bronze/orders", "b1") is None
    spool.discard()


def test_silver_comes_from_the_parse_without_reading_bronze_back(local_lake, monkeypatch):
    storage.write_bytes(
        "landing/orders/a.csv", csv_bytes(*(order_line(n) for n in range(1, 6)), order_line(9, "x"))
    )
    [file], _ = landing_files(storage.describe_objects("landing"), "landing", {"orders": ORDERS})
    landed = ingest_file(file, run_id="r1", batch_rows=2)

    def no_read_back(*args, **kwargs):
        pytest.fail("bronze was read back although the delivery was parsed in this process")

    with monkeypatch.context() as patched:
        patched.setattr(lake, "read_batches", no_read_back)
        done = conform_file(landed.file, batch_rows=2)
    assert (done.valid, done.quarantined, done.inserted) == (5, 1, 5)
    assert lake.read(ORDERS, columns=["order_id"])["order_id"].sort().to_list() == [1, 2, 3, 4, 5]
    assert spools.take(lake.location(ORDERS.bronze), file.batch_id) is None  # used up
