import io
from datetime import UTC, datetime

import polars as pl
import pyarrow.parquet as pq
import pytest

from flows import samples
from flows.catalog import CUSTOMERS, ERASURES, EVENTS, ORDERS, PRODUCTS, physical_tables
from flows.core import lake
from flows.core.contracts import Table
from flows.core.errors import TableNotFoundError
from flows.core.storage import list_objects, read_bytes
from flows.etl.forget_subject import (
    TableErasure,
    erasure_candidates,
    erasure_records,
    forget_subject,
    subject_ref,
    subject_value,
)

SUBJECT = 7


def test_delete_removes_matching_rows_in_one_commit_and_a_miss_commits_nothing(local_lake):
    lake.merge(CUSTOMERS, samples.customers(20))
    before = lake.version(CUSTOMERS)
    result = lake.delete(CUSTOMERS, where={"customer_id": 3})
    assert (result.operation, result.rows, result.version) == ("DELETE", 1, before + 1)
    assert lake.history(CUSTOMERS, limit=1)[0]["operation"] == "DELETE"
    assert 3 not in lake.read(CUSTOMERS)["customer_id"].to_list()
    miss = lake.delete(CUSTOMERS, where={"customer_id": 999})
    assert (miss.operation, miss.rows, miss.version) == ("NOOP", 0, before + 1)


def test_delete_without_a_condition_is_refused(local_lake):
    lake.merge(CUSTOMERS, samples.customers(5))
    with pytest.raises(ValueError, match="needs a condition"):
        lake.delete(CUSTOMERS, where={})


def test_vacuum_with_retention_zero_makes_old_versions_unreadable(local_lake):
    loaded = lake.merge(CUSTOMERS, samples.customers(20)).version
    lake.delete(CUSTOMERS, where={"customer_id": 3})
    assert lake.vacuum(CUSTOMERS, retention_hours=168) == []  # within retention: kept
    assert lake.read(CUSTOMERS, version=loaded).height == 20
    removed = lake.vacuum(CUSTOMERS, retention_hours=0, enforce_retention=False)
    assert len(removed) == 1
    with pytest.raises(Exception, match=r"(?i)not found|no such file"):
        lake.read(CUSTOMERS, version=loaded)
    assert lake.read(CUSTOMERS).height == 19


def test_vacuum_below_the_minimum_retention_is_refused_by_default(local_lake):
    lake.merge(CUSTOMERS, samples.customers(5))
    with pytest.raises(Exception, match=r"(?i)retention"):
        lake.vacuum(CUSTOMERS, retention_hours=0)


def test_erasure_candidates_are_tables_declaring_the_column_and_every_schema_on_read_table():
    paths = [t.path for t in erasure_candidates(physical_tables(), "customer_id")]
    assert "silver/customers" in paths
    assert "bronze/customers" in paths
    assert "quarantine/orders" in paths
    assert ORDERS.source_bronze("postgres").path in paths
    assert "bronze/orders_api" in paths
    assert "bronze/products" in paths  # raw columns are whatever was delivered: read at run time
    assert "silver/products" not in paths
    assert len(paths) == len(set(paths))


@pytest.mark.parametrize(("dtype", "expected"), [(pl.Int64, 7), (pl.Int32, 7), (pl.String, "7")])
def test_subject_value_matches_the_stored_type(dtype, expected):
    assert subject_value(dtype, 7) == expected


def test_subject_ref_is_stable_and_does_not_contain_the_id():
    assert subject_ref("customer_id", 12345) == subject_ref("customer_id", 12345)
    assert subject_ref("customer_id", 12345) != subject_ref("customer_id", 12346)
    assert "12345" not in subject_ref("customer_id", 12345)


def test_erasure_records_hold_no_personal_data():
    records = erasure_records(
        [TableErasure("silver/customers", 1, 1, 3)],
        erasure_id="e1",
        reference="ref",
        requested_by="dpo",
        request_ref="T-1",
        run_id="run",
        erased_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert ERASURES.conform(records.to_arrow()).num_rows == 1
    assert set(records.columns) == set(ERASURES.schema.names)


def seed_subject_data():
    lake.merge(CUSTOMERS, samples.customers(50))
    lake.merge(PRODUCTS, samples.products(10))
    lake.merge(ORDERS, samples.orders(300, customer_count=50, product_count=10))
    lake.merge(EVENTS, samples.events(300, customer_count=50, product_count=10))
    as_delivered = pl.from_arrow(samples.customers(50)).select(pl.all().cast(pl.String))
    lake.append(CUSTOMERS.bronze, as_delivered)


def subject_rows_in_files(table: Table) -> int:
    """Rows of the subject in every Parquet file left in the table's folder, referenced or not."""
    files = [f for f in list_objects(table.path) if f.endswith(".parquet")]
    assert files
    return sum(
        pl.from_arrow(pq.read_table(io.BytesIO(read_bytes(f)), columns=["customer_id"]))
        .filter(pl.col("customer_id").cast(pl.Int64) == SUBJECT)
        .height
        for f in files
    )


def test_flow_erases_the_subject_everywhere_physically_and_records_it(any_lake, prefect_api):
    seed_subject_data()
    holders = (CUSTOMERS, CUSTOMERS.bronze, ORDERS, EVENTS)
    before = {
        t.path: lake.read(t).filter(pl.col("customer_id").cast(pl.Int64) == SUBJECT).height
        for t in holders
    }
    assert all(count > 0 for count in before.values()), before

    erasures = forget_subject(SUBJECT, requested_by="dpo@example.com", request_ref="T-1")

    by_table = {e.table: e.rows_deleted for e in erasures}
    assert by_table == before
    for table in holders:
        current = lake.read(table)
        assert SUBJECT not in current["customer_id"].cast(pl.Int64).to_list()
        assert subject_rows_in_files(table) == 0
    assert lake.read(PRODUCTS).height == 10
    assert lake.read(CUSTOMERS).height == 49

    log = lake.read(ERASURES)
    assert sorted(log["table"].to_list()) == sorted(before)
    assert dict(zip(log["table"], log["rows_deleted"], strict=True)) == before
    assert log["requested_by"].unique().to_list() == ["dpo@example.com"]
    assert log["subject_ref"].unique().to_list() == [subject_ref("customer_id", SUBJECT)]

    again = forget_subject(SUBJECT, requested_by="dpo@example.com", request_ref="T-1")
    assert all(e.rows_deleted == 0 for e in again)
    assert lake.read(ERASURES).height == 2 * len(before)


def test_erasing_from_a_missing_table_is_skipped(local_lake, prefect_api):
    assert not lake.exists(CUSTOMERS)
    with pytest.raises(TableNotFoundError):
        lake.read(CUSTOMERS)
    assert forget_subject(SUBJECT, requested_by="dpo") == []
    assert not lake.exists(ERASURES)
