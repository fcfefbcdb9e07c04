"""The core additions the S3 pipeline relies on: lake.append_once / read_batches(where=) and
storage.describe_objects / open_input_*, on a local folder and on moto S3."""

import gzip
import threading

import pyarrow as pa
import pytest

from flows.core import lake, storage
from flows.core.contracts import Table
from flows.core.errors import WriteConflictError

RAW = Table("things", "bronze")


def batches(rows, fail_after=None):
    schema = pa.schema([("id", pa.int64()), ("_batch_id", pa.string())])

    def generate():
        for start in range(0, rows, 10):
            if fail_after is not None and start >= fail_after:
                raise ValueError("the source broke")
            ids = list(range(start, min(start + 10, rows)))
            yield pa.RecordBatch.from_pydict({"id": ids, "_batch_id": ["b"] * len(ids)}, schema)

    return pa.RecordBatchReader.from_batches(schema, generate())


def test_append_once_streams_one_commit_and_then_is_a_noop(any_lake):
    first = lake.append_once(RAW, batches(35), app_id="bronze:b")
    again = lake.append_once(RAW, batches(35), app_id="bronze:b")
    assert (first.operation, first.rows) == ("WRITE", 35)
    assert (again.operation, again.rows) == ("NOOP", 0)
    assert lake.read(RAW).height == 35
    assert lake.version(RAW) == 1  # created empty (so racing first writers conflict), one append
    assert lake.committed(RAW, "bronze:b")
    assert not lake.committed(RAW, "bronze:other")
    assert lake.history(RAW, limit=1)[0]["operation"] == "WRITE"


def test_append_once_reraises_the_source_error_and_commits_nothing(local_lake):
    lake.append_once(RAW, batches(5), app_id="first")
    with pytest.raises(ValueError, match="the source broke"):
        lake.append_once(RAW, batches(50, fail_after=20), app_id="second")
    assert lake.read(RAW).height == 5
    assert not lake.committed(RAW, "second")


def test_concurrent_append_once_of_one_delivery_lands_exactly_once(local_lake):
    lake.append_once(RAW, batches(1), app_id="seed")
    stale = [lake.open_table(RAW) for _ in range(2)]  # both writers saw no "same" yet
    assert all(t.transaction_version("same") is None for t in stale)
    outcomes = []
    barrier = threading.Barrier(2)

    def write():
        barrier.wait()
        try:
            outcomes.append(lake.append_once(RAW, batches(10), app_id="same").operation)
        except WriteConflictError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lake.read(RAW).height == 11
    assert "WRITE" in outcomes
    assert len(outcomes) == 2


def test_read_batches_filters_on_equality(local_lake):
    lake.append_once(RAW, batches(20), app_id="a")
    other = pa.table({"id": [100, 101], "_batch_id": ["c", "c"]})
    lake.append_once(RAW, other, app_id="c")
    rows = [r for b in lake.read_batches(RAW, where={"_batch_id": "c"}) for r in b.to_pylist()]
    assert rows == other.to_pylist()
    assert sum(b.num_rows for b in lake.read_batches(RAW, batch_rows=7)) == 22


def test_describe_objects_gives_sizes_and_a_tag_that_follows_the_content(any_lake):
    storage.write_bytes("landing/orders/a.csv", b"one")
    storage.write_bytes("landing/orders/sub/b.csv", b"three")
    storage.write_bytes("landing/other.csv", b"x")
    found = storage.describe_objects("landing/orders")
    assert [(o.path, o.size) for o in found] == [
        ("landing/orders/a.csv", 3),
        ("landing/orders/sub/b.csv", 5),
    ]
    storage.write_bytes("landing/orders/a.csv", b"two")
    assert storage.describe_objects("landing/orders")[0].tag != found[0].tag
    assert storage.describe_objects("landing/none") == []


def test_gzip_objects_are_stored_as_given_and_streamed_decompressed(any_lake):
    packed = gzip.compress(b"a,b\n1,2\n", mtime=0)
    storage.write_bytes("landing/x/a.csv.gz", packed)
    assert storage.read_bytes("landing/x/a.csv.gz") == packed
    with storage.open_input_stream("landing/x/a.csv.gz") as stream:
        assert stream.read() == b"a,b\n1,2\n"
    with storage.open_input_file("landing/x/a.csv.gz") as handle:
        assert handle.size() == len(packed)


def test_a_delivery_committed_between_check_and_write_is_not_appended_twice(
    local_lake, monkeypatch
):
    lake.append_once(RAW, batches(1), app_id="seed")
    original = lake.open_table
    raced = []

    def open_then_lose_the_race(table, **kwargs):
        snapshot = original(table, **kwargs)
        if not raced:
            raced.append(True)
            lake.append_once(RAW, batches(10), app_id="same")  # another writer commits first
        return snapshot

    monkeypatch.setattr(lake, "open_table", open_then_lose_the_race)
    with pytest.raises(WriteConflictError, match="another writer committed"):
        lake.append_once(RAW, batches(10), app_id="same")
    assert lake.read(RAW).height == 11
