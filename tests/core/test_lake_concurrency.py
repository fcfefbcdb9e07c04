"""Keyed writes that append when the keys are new, and lake calls from many threads and processes."""

import os
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from flows.core import lake
from flows.core.contracts import Table
from tests.core.test_lake import ITEMS, T0, items, rows

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS = Table("raw_events", "bronze")


def files(lows, highs, *, records=None):
    return pa.table(
        {
            "num_records": records or [1] * len(lows),
            "min.id": pa.array(lows, pa.int64()),
            "max.id": pa.array(highs, pa.int64()),
        }
    )


@pytest.mark.parametrize(
    ("target", "ids", "expected"),
    [
        (files([], []), [1, 2], [False, False]),  # an empty table: everything is new
        (files([10, 30], [20, 40]), [5, 10, 25, 40, 41], [False, True, False, True, False]),
        (files([10, 12], [50, 15]), [30, 60], [True, False]),  # overlapping files
        (files([10], [20], records=[0]), [15], [False]),  # an empty file holds nothing
        (files([None], [None]), [1, 99], [True, True]),  # no statistics: anything may match
    ],
)
def test_rows_that_may_match_follow_the_files_key_ranges(target, ids, expected):
    data = pa.table({"id": pa.array(ids, pa.int64())})
    assert lake.rows_that_may_match(data, target, ["id"]).to_pylist() == expected


def test_a_partition_key_is_bounded_by_the_partition_value():
    target = pa.table({"num_records": [3], "partition.day": [date(2024, 1, 2)]})
    data = pa.table({"day": [date(2024, 1, 1), date(2024, 1, 2)]})
    assert lake.rows_that_may_match(data, target, ["day"]).to_pylist() == [False, True]


def test_new_keys_are_appended_in_one_commit_and_existing_ones_merged(local_lake):
    assert lake.merge(ITEMS, items([1, 2], [1.0, 2.0])).operation == "APPEND"
    assert lake.history(ITEMS, limit=1)[0]["operation"] == "WRITE"
    mixed = pa.concat_tables(
        [
            items([2], [20.0], updated=T0 + timedelta(hours=1)),
            items([1], [-1.0], updated=T0 - timedelta(hours=1)),  # older: must not win
            items([7, 8], [7.0, 8.0]),
        ]
    )
    result = lake.merge(ITEMS, mixed)
    assert (result.operation, result.inserted, result.updated) == ("MERGE", 2, 1)
    assert [c["operation"] for c in lake.history(ITEMS, limit=2)] == ["MERGE", "WRITE"]
    assert [(r["id"], r["value"]) for r in rows()] == [(1, 1.0), (2, 20.0), (7, 7.0), (8, 8.0)]
    before = rows()
    assert lake.merge(ITEMS, mixed).inserted == 0  # idempotent: a re-run adds nothing
    assert rows() == before


def test_a_key_repeated_in_one_batch_lands_once_with_its_newest_row(local_lake):
    batch = pa.concat_tables(
        [
            items([5], [2.0], updated=T0 + timedelta(hours=2)),
            items([5], [1.0], updated=T0 + timedelta(hours=1)),
            items([6, 6], [1.0, 3.0]),  # equal timestamps: the last delivered wins
        ]
    )
    assert lake.merge(ITEMS, batch).inserted == 2
    assert [(r["id"], r["value"]) for r in rows()] == [(5, 2.0), (6, 3.0)]


def batches_of(*tables: pa.Table):
    """`merge_batches`' `rows`: the tables as one stream, each a batch, only the named columns."""
    return lambda columns: pa.RecordBatchReader.from_batches(
        ITEMS.schema if columns is None else pa.schema([ITEMS.schema.field(c) for c in columns]),
        [batch.select(columns or ITEMS.schema.names) for t in tables for batch in t.to_batches()],
    )


def test_merge_batches_appends_new_keys_over_many_days_in_one_commit_and_merges_the_rest(
    local_lake,
):
    lake.merge(ITEMS, items([1, 2], [1.0, 2.0]))
    stream = batches_of(
        items([2], [20.0], updated=T0 + timedelta(hours=1)),
        items([1], [-1.0], updated=T0 - timedelta(hours=1)),  # older: must not win
        *(items([10 + n], [float(n)], day=date(2024, 1, 1) + timedelta(days=n)) for n in range(5)),
        items([11], [99.0], day=date(2024, 1, 2), updated=T0 + timedelta(hours=1)),  # repeated
    )
    before = lake.version(ITEMS)
    result = lake.merge_batches(ITEMS, stream)
    assert (result.operation, result.inserted, result.updated) == ("MERGE", 5, 1)
    commits = lake.history(ITEMS, limit=lake.version(ITEMS) - before)
    assert sorted(c["operation"] for c in commits) == ["MERGE", "WRITE"]  # 5 days, one append
    assert [(r["id"], r["value"]) for r in rows()] == [
        (1, 1.0), (2, 20.0), (10, 0.0), (11, 99.0), (12, 2.0), (13, 3.0), (14, 4.0)
    ]  # fmt: skip
    again = rows()
    assert lake.merge_batches(ITEMS, stream).inserted == 0  # a re-run adds nothing
    assert rows() == again


def test_merge_batches_keeps_the_newest_row_of_a_key_repeated_across_batches(local_lake):
    stream = batches_of(
        items([5], [2.0], updated=T0 + timedelta(hours=2)),
        items([6], [1.0]),
        items([5], [1.0], updated=T0 + timedelta(hours=1)),
        items([6], [3.0]),  # equal timestamps: the last delivered wins
    )
    result = lake.merge_batches(ITEMS, stream)
    assert (result.operation, result.inserted) == ("APPEND", 2)
    assert [(r["id"], r["value"]) for r in rows()] == [(5, 2.0), (6, 3.0)]


def test_merge_batches_merges_in_groups_of_merge_rows(local_lake, monkeypatch):
    lake.merge(ITEMS, items(list(range(10)), [0.0] * 10))
    monkeypatch.setenv("LAKE_MERGE_ROWS", "3")
    later = T0 + timedelta(hours=1)
    stream = batches_of(*(items([n], [float(n)], updated=later) for n in range(10)))
    before = lake.version(ITEMS)
    assert lake.merge_batches(ITEMS, stream).updated == 10
    assert lake.version(ITEMS) - before == 4  # 3 + 3 + 3 + 1 rows
    assert [r["value"] for r in rows()] == [float(n) for n in range(10)]


def test_same_new_keys_from_threads_with_merge_batches_land_once(local_lake):
    lake.create_if_missing(ITEMS)
    stream = batches_of(items(list(range(50)), [1.0] * 50), items(list(range(50, 100)), [2.0] * 50))
    results = []
    threads = [threading.Thread(target=lambda: results.append(lake.merge_batches(ITEMS, stream)))
               for _ in range(3)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 3
    assert lake.read(ITEMS, columns=["id"])["id"].sort().to_list() == list(range(100))
    assert sum(r.inserted for r in results) == 100


def write_keys(first: int, count: int, rounds: int) -> None:
    """Merge `rounds` overlapping batches of `count` keys from `first` (a process's work)."""
    for n in range(rounds):
        lake.merge(ITEMS, items(list(range(first + n * count // 2, first + (n + 2) * count // 2)),
                                [float(n)] * count, updated=T0 + timedelta(minutes=n)))  # fmt: skip


def writer_processes(s3_lake, s3_env, *arguments):
    """One process running `write_keys(*a)` per `a` in `arguments`, started together."""
    env = {**os.environ, **s3_env, "LAKE_URI": s3_lake, "PYTHONPATH": str(REPO_ROOT)}
    code = (
        "import sys; from tests.core.test_lake_concurrency import write_keys;"
        " write_keys(*map(int, sys.argv[1:]))"
    )
    return [
        subprocess.Popen([sys.executable, "-c", code, *map(str, a)], env=env) for a in arguments
    ]


def test_concurrent_writers_of_the_same_new_keys_on_s3_land_each_key_once(s3_lake, s3_env):
    """Each process decides "all new" on its snapshot; only one append may commit on it, the
    others conflict and merge instead."""
    lake.create_if_missing(ITEMS)
    processes = writer_processes(s3_lake, s3_env, *[(0, 100, 1)] * 2)
    assert [process.wait(timeout=60) for process in processes] == [0, 0]
    assert lake.read(ITEMS, columns=["id"])["id"].sort().to_list() == list(range(100))
    kinds = [c["operation"] for c in lake.history(ITEMS)]
    assert kinds.count("WRITE") == 2  # the empty table, then the first append


@pytest.mark.timeout(120)
def test_threads_and_two_processes_write_and_merge_the_same_tables_on_s3(s3_lake, s3_env):
    """Streaming appends (app transactions) and keyed merges from 6 threads and 2 processes at
    once into the same two tables: no deadlock, no lost or duplicated row."""
    lake.create_if_missing(ITEMS)
    schema = pa.schema([("n", pa.string())])
    # created first: racing first appends to a schema-on-read table may conflict on its schema
    # (metadata), which the flows' tasks retry; here every write must land at once
    lake.append_once(EVENTS, schema.empty_table(), app_id="created")
    processes = writer_processes(s3_lake, s3_env, (10_000, 200, 3), (20_000, 200, 3))
    failures: list[BaseException] = []

    def stream(worker: int) -> None:
        try:
            for n in range(3):
                batches = (pa.record_batch({"n": [str(worker * 100 + n)] * 50}) for _ in range(4))
                reader = pa.RecordBatchReader.from_batches(schema, batches)
                lake.append_once(EVENTS, reader, app_id=f"delivery-{worker}-{n}")
                lake.append_once(EVENTS, pa.table({"n": ["x"]}), app_id=f"delivery-{worker}-{n}")
        except BaseException as error:  # collected and asserted below
            failures.append(error)

    def merge(worker: int) -> None:
        try:
            write_keys(worker * 1000, 100, 3)
            lake.read(ITEMS, columns=["id"])
            list(lake.read_batches(ITEMS, batch_rows=50))
        except BaseException as error:  # collected and asserted below
            failures.append(error)

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(3)]
    threads += [threading.Thread(target=merge, args=(w,)) for w in range(1, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [process.wait(timeout=90) for process in processes] == [0, 0]
    assert failures == []
    assert lake.read(EVENTS).height == 3 * 3 * 4 * 50
    ids = lake.read(ITEMS, columns=["id"])["id"]
    assert ids.n_unique() == ids.len() == 3 * (2 * 100) + 2 * (4 * 100)
