"""Silver written by appending new keys and merging the rest equals a re-conform from bronze."""

from flows.catalog import ORDERS
from flows.core import lake, storage
from flows.etl.s3_pipeline.layers import conform_file
from tests.etl.test_s3_data_pipeline_bad_input import csv_bytes, ingest_all, order_line

EARLY, LATE = "2024-01-02T09:00:00+00:00", "2024-01-02T11:00:00+00:00"


def silver():
    return lake.read(ORDERS).sort("order_id").to_dicts()


def quarantine():
    return lake.read(ORDERS.quarantine, columns=["order_id", "_reason"]).sort("order_id").rows()


def test_a_reconform_from_bronze_gives_the_silver_of_the_first_pass(local_lake):
    storage.write_bytes(
        "landing/orders/a.csv",
        csv_bytes(*(order_line(n) for n in range(1, 5)), order_line(9, amount="-1")),
    )
    storage.write_bytes(  # mixes existing keys (3 newer, 4 older) with new ones, 6 twice
        "landing/orders/b.csv",
        csv_bytes(
            order_line(3, "30.0", LATE),
            order_line(4, "40.0", EARLY),
            order_line(5),
            order_line(6, "6.0"),
            order_line(6, "6.5"),
        ),
    )
    results, _conformed = ingest_all()
    first = silver()
    assert [(row["order_id"], row["amount"]) for row in first] == [
        (1, 10.0), (2, 10.0), (3, 30.0), (4, 10.0), (5, 10.0), (6, 6.5)
    ]  # fmt: skip
    kinds = [commit["operation"] for commit in lake.history(ORDERS)]
    assert "MERGE" in kinds  # b.csv's existing keys
    assert kinds.count("WRITE") >= 3  # created, a.csv appended, b.csv's new keys appended
    rejects = quarantine()
    for name in sorted(results):
        conform_file(results[name].file, replay=True)
    assert silver() == first
    assert quarantine() == rejects
