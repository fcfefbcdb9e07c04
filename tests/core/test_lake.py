"""Delta round trips on a local folder and on moto S3: the data and the transaction log."""

import threading
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest

from flows.core import lake
from flows.core.contracts import Table
from flows.core.errors import ContractViolation, TableNotFoundError, WriteConflictError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ITEMS = Table(
    "items",
    "silver",
    pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            ("value", pa.float64()),
            pa.field("day", pa.date32(), nullable=False),
            pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
        ]
    ),
    key=("id",),
    partition_by=("day",),
    newest_by="updated_at",
)


def items(ids, values, day=date(2024, 1, 1), updated=T0):
    return pa.table(
        {
            "id": ids,
            "value": values,
            "day": [day] * len(ids),
            "updated_at": [updated] * len(ids),
        }
    ).cast(ITEMS.schema)


def rows(table=ITEMS):
    return sorted(lake.read(table).to_dicts(), key=lambda r: r.get("id", 0))


def test_merge_upserts_on_the_key_and_a_later_update_wins(any_lake):
    lake.merge(ITEMS, items([1, 2], [1.0, 2.0]))
    result = lake.merge(
        ITEMS,
        pa.concat_tables(
            [
                items([1], [10.0], updated=T0 + timedelta(hours=1)),
                items([2], [-1.0], updated=T0 - timedelta(hours=1)),  # older: must not win
                items([3], [3.0]),
            ]
        ),
    )
    assert (result.operation, result.inserted, result.updated) == ("MERGE", 1, 1)
    assert [(r["id"], r["value"]) for r in rows()] == [(1, 10.0), (2, 2.0), (3, 3.0)]
    last = lake.history(ITEMS, limit=1)[0]
    assert last["operation"] == "MERGE"
    assert last["prefect.flow_run_id"] == "local"


def test_replace_where_is_idempotent_per_batch(any_lake):
    bronze = ITEMS.bronze
    batch = pa.table({"raw": ["a", "b"], "_batch_id": ["b1", "b1"]})
    for _ in range(3):
        lake.replace_where(bronze, batch, where={"_batch_id": "b1"})
    lake.replace_where(
        bronze, pa.table({"raw": ["c"], "_batch_id": ["b2"]}), where={"_batch_id": "b2"}
    )
    assert sorted(lake.read(bronze)["raw"].to_list()) == ["a", "b", "c"]
    assert lake.history(bronze, limit=1)[0]["operationParameters"]["mode"] == "Overwrite"


def test_bronze_accepts_a_new_column_by_schema_merge(local_lake):
    bronze = ITEMS.bronze
    lake.append(bronze, pa.table({"a": ["1"]}))
    lake.append(bronze, pa.table({"a": ["2"], "new": ["x"]}))
    assert lake.read(bronze).sort("a").to_dicts() == [
        {"a": "1", "new": None},
        {"a": "2", "new": "x"},
    ]


def test_overwrite_partitions_touches_only_the_partitions_in_the_data(local_lake):
    lake.append(ITEMS, items([1], [1.0], day=date(2024, 1, 1)))
    lake.append(ITEMS, items([2], [2.0], day=date(2024, 1, 2)))
    lake.overwrite_partitions(ITEMS, items([3], [3.0], day=date(2024, 1, 2)))
    assert [(r["id"], r["day"]) for r in rows()] == [(1, date(2024, 1, 1)), (3, date(2024, 1, 2))]
    predicate = lake.history(ITEMS, limit=1)[0]["operationParameters"]["predicate"]
    assert "2024-01-02" in predicate


def test_writes_enforce_the_contract(local_lake):
    with pytest.raises(ContractViolation, match="missing column"):
        lake.append(ITEMS, pa.table({"id": [1]}))


def test_reading_a_missing_table_says_what_to_do(local_lake):
    with pytest.raises(TableNotFoundError, match="run the flow that writes it"):
        lake.read(ITEMS)


def test_read_pushes_filters_and_projections_and_time_travels(local_lake):
    lake.append(ITEMS, items([1, 2], [1.0, 2.0]))
    lake.append(ITEMS, items([3], [3.0]))
    assert lake.read(ITEMS, columns=["id"], where=pl.col("value") > 1.5)["id"].sort().to_list() == [
        2,
        3,
    ]
    assert lake.read(ITEMS, version=0).height == 2
    assert lake.version(ITEMS) == 1


def test_read_batches_streams_the_table(local_lake):
    lake.append(ITEMS, items(list(range(10)), [1.0] * 10))
    batches = list(lake.read_batches(ITEMS, batch_rows=3))
    assert max(b.num_rows for b in batches) <= 3
    assert sum(b.num_rows for b in batches) == 10


def test_empty_writes_make_no_commit(local_lake):
    lake.append(ITEMS, items([1], [1.0]))
    assert lake.append(ITEMS, items([], [])).operation == "NOOP"
    assert lake.merge(ITEMS, items([], [])).operation == "NOOP"
    assert lake.version(ITEMS) == 0


@pytest.mark.parametrize(
    ("value", "literal"),
    [("it's", "'it''s'"), (3, "3"), (True, "true"), (date(2024, 1, 2), "'2024-01-02'")],
)
def test_sql_literal_quotes_values(value, literal):
    assert lake.sql_literal(value) == literal


def test_key_ranges_bound_orderable_keys_by_the_source_values():
    data = pa.table(
        {
            "id": pa.array([5, 2, 9], pa.int64()),
            "name": ["b", "a'", "c"],
            "day": [date(2024, 1, 3), date(2024, 1, 1), None],
            "score": [1.0, 2.0, 3.0],
            "empty": pa.nulls(3, pa.int64()),
        }
    )
    assert lake.key_ranges(data, ["id", "name", "day", "score", "empty"], alias="t") == [
        't."id" >= 2',
        't."id" <= 9',
        "t.\"name\" >= 'a'''",
        "t.\"name\" <= 'c'",
        "t.\"day\" >= '2024-01-01'",
        "t.\"day\" <= '2024-01-03'",
    ]


def test_concurrent_appends_on_s3_lose_no_commit(s3_lake):
    """delta-rs commits with conditional put on S3; moto enforces it, so this race is real."""
    lake.append(ITEMS, items([0], [0.0]))
    writers, per_writer = 4, 3
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(per_writer):
                lake.append(ITEMS, items([1000 * worker + n], [float(n)]))
        except BaseException as error:  # collected and asserted below
            failures.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(1, writers + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert lake.read(ITEMS).height == 1 + writers * per_writer
    assert lake.version(ITEMS) == writers * per_writer


def test_two_first_merges_into_a_new_table_on_s3_never_duplicate_keys(s3_lake):
    """The first merge creates the table empty and then MERGEs, so racing first writers conflict."""
    outcomes: list[object] = []

    def first_merge() -> None:
        try:
            outcomes.append(lake.merge(ITEMS, items([1, 2, 3], [1.0, 2.0, 3.0])))
        except WriteConflictError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=first_merge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2
    assert sorted(lake.read(ITEMS)["id"].to_list()) == [1, 2, 3]
    assert lake.history(ITEMS)[-1]["operation"] in {"CREATE TABLE", "WRITE"}  # created empty first


def test_storage_options_follow_changed_credentials(s3_lake, monkeypatch):
    rotated = "rotated-key"  # pragma: allowlist secret
    first = lake.storage_options()["AWS_SECRET_ACCESS_KEY"]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", rotated)
    assert first != rotated
    assert lake.storage_options()["AWS_SECRET_ACCESS_KEY"] == rotated


@pytest.mark.parametrize("round_", range(3))
def test_two_first_appends_of_one_delivery_on_s3_land_it_once(s3_lake, round_):
    """Racing first writers of a schema-on-read table: the first creates it, the other conflicts
    or finds the app transaction, never a second copy."""
    raw = Table(f"raw_{round_}", "bronze")
    delivery = pa.table({"id": ["1", "2", "3"]})
    outcomes: list[object] = []

    def first_append() -> None:
        try:
            outcomes.append(lake.append_once(raw, delivery, app_id="bronze:delivery-1"))
        except WriteConflictError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=first_append) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2
    assert lake.read(raw).height == 3
