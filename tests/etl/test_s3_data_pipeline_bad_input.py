"""Bad input, file by file, through the plain ingest and conform functions (no Prefect needed).

Every test checks the accounting: rows parsed = rows in bronze for the delivery, and silver +
quarantine account for every bronze row. Nothing lost, nothing duplicated.
"""

import gzip
import io
import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.catalog import CUSTOMERS, ORDERS, landing_sources
from flows.core import lake, storage
from flows.etl.s3_pipeline.layers import conform_file, ingest_file
from flows.etl.s3_pipeline.transforms import landing_files

HEADER = "order_id,customer_id,product_id,quantity,amount,status,order_date,updated_at"


def order_line(order_id, amount="10.0", updated="2024-01-02T10:00:00+00:00", status="placed"):
    return f"{order_id},7,3,1,{amount},{status},2024-01-02,{updated}"


def csv_bytes(*lines, header=HEADER):
    return ("\n".join([header, *lines]) + "\n").encode()


def ingest_all(batch_rows=None):
    """Ingest and conform everything in landing/, checking the accounting of each delivery."""
    files, _ = landing_files(storage.describe_objects("landing"), "landing", landing_sources())
    results = {f.path.rsplit("/", 1)[1]: ingest_file(f, run_id="r1", batch_rows=batch_rows)
               for f in files}  # fmt: skip
    conformed = {}
    for name, result in results.items():
        if result.status != "bronze":
            continue
        contract = landing_sources()[result.file.source]
        batch = pl.col("_batch_id") == result.file.batch_id
        assert lake.read(contract.bronze, where=batch).height == result.rows
        done = conform_file(result.file, batch_rows=batch_rows)
        assert done.bronze_rows == result.rows
        assert done.valid + done.quarantined == done.bronze_rows
        if done.quarantined:
            assert lake.read(contract.quarantine, where=batch).height == done.quarantined
        conformed[name] = done
    return results, conformed


def reasons(contract=ORDERS):
    return sorted(lake.read(contract.quarantine)["_reason"].to_list())


def silver_ids(contract=ORDERS, key="order_id"):
    return sorted(lake.read(contract)[key].to_list())


def test_malformed_csv_lines_go_to_quarantine_with_their_text(local_lake):
    storage.write_bytes(
        "landing/orders/a.csv",
        csv_bytes(order_line(1), order_line(2) + ",extra", "3,7,3", order_line(4)),
    )
    results, _conformed = ingest_all()
    assert results["a.csv"].rows == 4
    assert silver_ids() == [1, 4]
    quarantine = lake.read(ORDERS.quarantine)
    assert sorted(quarantine["_reason"].to_list()) == [
        "malformed CSV line: expected 8 fields, got 3",
        "malformed CSV line: expected 8 fields, got 9",
    ]
    assert sorted(quarantine["_raw"].to_list()) == sorted(["3,7,3", order_line(2) + ",extra"])


def test_wrong_types_are_quarantined_per_row(local_lake):
    storage.write_bytes(
        "landing/orders/a.csv",
        csv_bytes(order_line(1), order_line(2, amount="twelve"),
                  "3,7,3,one,5.0,placed,2024-01-02,2024-01-02T10:00:00+00:00",
                  "4,7,3,1,5.0,placed,yesterday,2024-01-02T10:00:00+00:00"),
    )  # fmt: skip
    ingest_all()
    assert silver_ids() == [1]
    assert reasons() == [
        "amount: not a valid Float64",
        "order_date: not a valid Date; order_date: is null",
        "quantity: not a valid Int64",
    ]


def test_a_file_missing_a_required_column_fails_alone(local_lake):
    storage.write_bytes(
        "landing/orders/a.csv",
        csv_bytes("1,3,1,10.0,placed,2024-01-02,2024-01-02T10:00:00+00:00",
                  header=HEADER.replace("customer_id,", "")),
    )  # fmt: skip
    storage.write_bytes("landing/orders/b.csv", csv_bytes(order_line(2)))
    results, _ = ingest_all()
    assert results["a.csv"].status == "failed"
    assert "missing required column(s) ['customer_id']" in results["a.csv"].error
    assert results["b.csv"].status == "bronze"
    assert lake.read(ORDERS.bronze)["_source"].unique().to_list() == ["landing/orders/b.csv"]
    assert silver_ids() == [2]


def test_extra_columns_land_in_bronze_and_missing_optional_ones_are_null(local_lake):
    storage.write_bytes(
        "landing/orders/a.csv",
        csv_bytes("1,7,3,1,10.0,2024-01-02,2024-01-02T10:00:00+00:00,SPRING",
                  header=HEADER.replace("status,", "") + ",coupon"),
    )  # fmt: skip
    storage.write_bytes("landing/orders/b.csv", csv_bytes(order_line(2)))
    results, _ = ingest_all()
    assert results["a.csv"].new_columns == ("coupon",)
    assert results["b.csv"].new_columns == ()
    bronze = lake.read(ORDERS.bronze).sort("order_id")
    assert bronze["coupon"].to_list() == ["SPRING", None]
    silver = lake.read(ORDERS).sort("order_id")
    assert "coupon" not in silver.columns
    assert silver["status"].to_list() == [None, "placed"]


def test_null_keys_are_quarantined_and_duplicate_keys_keep_the_newest(local_lake):
    storage.write_bytes(
        "landing/orders/a.csv",
        csv_bytes(
            order_line(1, amount="1.0", updated="2024-01-02T10:00:00+00:00"),
            order_line(1, amount="3.0", updated="2024-01-02T12:00:00+00:00"),
            order_line(1, amount="2.0", updated="2024-01-02T11:00:00+00:00"),
            order_line("", amount="9.0"),
        ),
    )
    # a later file carries an older version: it must not win
    storage.write_bytes(
        "landing/orders/b.csv",
        csv_bytes(order_line(1, amount="0.5", updated="2024-01-01T00:00:00+00:00")),
    )
    ingest_all()
    silver = lake.read(ORDERS)
    assert silver.select("order_id", "amount").to_dicts() == [{"order_id": 1, "amount": 3.0}]
    assert reasons() == ["order_id: is null"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("header-only.csv", csv_bytes()),
        ("empty-array.json", b"[]"),
        ("blank.jsonl", b"\n\n"),
        ("zero-bytes.csv", b""),
        ("zero-bytes.parquet", b""),
        ("empty.csv.gz", gzip.compress(b"", mtime=0)),
    ],
)
def test_empty_files_are_recorded_as_empty_and_add_nothing(local_lake, name, content):
    storage.write_bytes(f"landing/orders/{name}", content)
    storage.write_bytes("landing/orders/z.csv", csv_bytes(order_line(1)))
    results, _ = ingest_all()
    assert results[name].status == "empty"
    assert results[name].rows == 0
    assert lake.read(ORDERS.bronze).height == 1
    assert silver_ids() == [1]


def test_non_utf8_bytes_quarantine_the_row_and_keep_its_bytes_escaped(local_lake):
    customers = "customer_id,name,email,country,segment,signup_date,updated_at\n"
    row = ",{name},c{i}@example.com,GB,consumer,2024-01-01,2024-01-01T00:00:00+00:00\n"
    storage.write_bytes(
        "landing/customers/a.csv",
        (customers + "1" + row.format(name="Ann", i=1)).encode()
        + b"2" + row.format(name="Caf\udce9", i=2).encode("utf-8", "surrogateescape"),
    )  # fmt: skip
    storage.write_bytes(
        "landing/customers/b.jsonl",
        json.dumps({"customer_id": 3, "name": "Bo", "updated_at": "2024-01-01T00:00:00+00:00"}).encode()
        + b'\n{"customer_id": 4, "name": "Caf\xe9"}\n',
    )  # fmt: skip
    ingest_all()
    assert silver_ids(CUSTOMERS, "customer_id") == [1, 3]
    quarantine = lake.read(CUSTOMERS.quarantine).sort("_reason")
    assert quarantine["_reason"].to_list() == ["not valid UTF-8", "not valid UTF-8 in name"]
    assert quarantine["name"].to_list() == [None, "Caf\\xe9"]
    assert quarantine["_raw"].to_list() == ['{"customer_id": 4, "name": "Caf\\xe9"}', None]


def test_a_truncated_parquet_file_fails_alone_with_a_clear_error(local_lake):
    sink = io.BytesIO()
    pq.write_table(pa.table({"order_id": [1], "customer_id": [2]}), sink)
    storage.write_bytes("landing/orders/a.parquet", sink.getvalue()[:-20])
    storage.write_bytes("landing/orders/b.csv", csv_bytes(order_line(2)))
    results, _ = ingest_all()
    assert results["a.parquet"].status == "failed"
    assert "unreadable Parquet" in results["a.parquet"].error
    assert lake.read(ORDERS.bronze).height == 1
    assert silver_ids() == [2]


def test_a_huge_single_line_is_ingested_whole(local_lake):
    huge = "x" * 3_000_000
    storage.write_bytes(
        "landing/orders/a.csv",
        csv_bytes(order_line(1) + f",{huge}", order_line(2) + ",small", header=HEADER + ",note"),
    )
    record = {"order_id": 3, "customer_id": 7, "order_date": "2024-01-02",
              "updated_at": "2024-01-02T10:00:00+00:00", "note": huge}  # fmt: skip
    storage.write_bytes("landing/orders/b.jsonl", json.dumps(record).encode())
    results, _ = ingest_all(batch_rows=100)  # 1 MiB CSV blocks: the line needs a restart
    assert (results["a.csv"].rows, results["b.jsonl"].rows) == (2, 1)
    notes = lake.read(ORDERS.bronze).sort("order_id")["note"].to_list()
    assert [len(n) for n in notes] == [3_000_000, 5, 3_000_000]
    assert silver_ids() == [1, 2, 3]


def test_json_keys_that_first_appear_late_are_kept(local_lake):
    records = [{"order_id": i, "customer_id": 7, "order_date": "2024-01-02",
                "updated_at": "2024-01-02T10:00:00+00:00"} for i in range(1, 6)]  # fmt: skip
    records[4]["coupon"] = "LATE"
    storage.write_bytes("landing/orders/a.json", json.dumps(records).encode())
    results, _ = ingest_all(batch_rows=2)
    assert results["a.json"].rows == 5
    assert results["a.json"].new_columns == ("coupon",)
    assert lake.read(ORDERS.bronze)["coupon"].drop_nulls().to_list() == ["LATE"]


def test_reingesting_a_delivery_adds_nothing(local_lake):
    storage.write_bytes("landing/orders/a.csv", csv_bytes(order_line(1), order_line(2, "x")))
    results, _ = ingest_all()
    again = ingest_file(results["a.csv"].file, run_id="r2")
    conform_file(results["a.csv"].file)
    assert (again.status, again.rows) == ("bronze", 0)
    assert lake.read(ORDERS.bronze).height == 2
    assert lake.read(ORDERS.quarantine).height == 1
    assert silver_ids() == [1]


def test_a_redelivery_under_the_same_name_is_a_new_delivery_and_updates_silver(local_lake):
    storage.write_bytes("landing/orders/a.csv", csv_bytes(order_line(1, "1.0")))
    first, _ = ingest_all()
    storage.write_bytes(
        "landing/orders/a.csv", csv_bytes(order_line(1, "2.0", "2024-01-03T00:00:00+00:00"))
    )
    second, _ = ingest_all()
    assert first["a.csv"].file.batch_id != second["a.csv"].file.batch_id
    assert lake.read(ORDERS.bronze).height == 2  # bronze keeps every delivery
    assert lake.read(ORDERS)["amount"].to_list() == [2.0]


def test_a_csv_of_only_malformed_lines_is_all_quarantined(local_lake):
    storage.write_bytes("landing/orders/a.csv", csv_bytes("1,2", "3"))
    results, conformed = ingest_all()
    assert results["a.csv"].rows == 2
    assert conformed["a.csv"].quarantined == 2


def test_a_header_with_a_repeated_column_fails_alone_and_the_other_files_land(local_lake):
    storage.write_bytes("landing/orders/a.csv", csv_bytes(order_line(1)))
    storage.write_bytes(
        "landing/orders/b.csv",
        csv_bytes("2," + order_line(2), header=HEADER.replace("order_id", "order_id,order_id")),
    )
    results, _conformed = ingest_all()
    assert results["b.csv"].status == "failed"
    assert results["b.csv"].error == (
        "landing/orders/b.csv: column(s) ['order_id'] appear more than once"
    )
    assert silver_ids() == [1]
    assert not lake.read(ORDERS.bronze).filter(pl.col("_source").str.ends_with("b.csv")).height
