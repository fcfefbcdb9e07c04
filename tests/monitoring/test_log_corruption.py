"""Crash debris in a table folder: orphaned Parquet files and damaged or missing log entries.

What delta-rs does, found by these tests:
- an uncommitted (orphaned, half-written) Parquet file is invisible to readers; a full vacuum
  removes it once it is older than the retention (younger, it may be an in-flight write);
- a missing last commit file means that commit never happened: readers see the version before;
- a damaged or missing commit file after the last checkpoint makes the table unreadable
  (CorruptTableError, saying what to do); versions before it stay readable by time travel;
- the same damage before the last checkpoint does not matter to readers of the latest version,
  which is one more reason maintenance writes checkpoints.
"""

import os
import time
from pathlib import Path

import pytest

from flows import samples
from flows.catalog import EVENTS, ORDERS
from flows.core import lake, storage
from flows.core.errors import CorruptTableError, LakeError
from flows.monitoring.table_maintenance import table_maintenance

HALF_WRITTEN = b"PAR1\x15\x04\x15\x80\x08"  # a Parquet header and nothing after it


def commits(count=5, rows=50):
    data = samples.events(rows)
    step = rows // count
    for start in range(0, rows, step):
        lake.append(EVENTS, data.slice(start, step))


def rows(version=None):
    return lake.read(EVENTS, version=version).sort("event_id").to_dicts()


def log_entry(version):
    return f"{EVENTS.path}/_delta_log/{version:020d}.json"


def truncate(relative):
    storage.write_bytes(relative, b'{"add": {"path": "part-0')


def remove(relative):
    filesystem, root = storage.filesystem()
    filesystem.delete_file(f"{root}/{relative}")


def plant_orphan():
    name = "part-00000-crashed-writer-c000.snappy.parquet"
    storage.write_bytes(f"{EVENTS.path}/{name}", HALF_WRITTEN)
    return name


def test_an_orphaned_half_written_file_is_invisible_and_vacuum_removes_it_when_old(
    local_lake, prefect_api
):
    commits()
    expected = rows()
    orphan = plant_orphan()
    assert rows() == expected

    table_maintenance(tables=[EVENTS.path])
    assert (Path(lake.location(EVENTS)) / orphan).exists()  # young: maybe a write in flight

    eight_days_ago = time.time() - 8 * 86_400
    os.utime(Path(lake.location(EVENTS)) / orphan, (eight_days_ago, eight_days_ago))
    table_maintenance(tables=[EVENTS.path])

    assert not (Path(lake.location(EVENTS)) / orphan).exists()
    assert rows() == expected


def test_a_forced_vacuum_removes_an_orphan_on_s3(s3_lake, prefect_api):
    commits()
    expected = rows()
    orphan = plant_orphan()
    assert rows() == expected

    table_maintenance(tables=[EVENTS.path], retention_hours=0, force=True)

    assert f"{EVENTS.path}/{orphan}" not in storage.list_objects(EVENTS.path)
    assert rows() == expected


def test_a_missing_last_commit_never_happened(any_lake):
    commits()
    before_last = rows(version=3)
    remove(log_entry(4))
    assert (lake.version(EVENTS), rows()) == (3, before_last)


@pytest.mark.parametrize("damage", [truncate, remove])
def test_a_damaged_commit_after_the_checkpoint_is_a_clear_error(any_lake, damage):
    commits()
    good = rows(version=1)
    damage(log_entry(2))

    with pytest.raises(CorruptTableError, match=r"silver/events: the Delta log cannot be replayed"):
        lake.read(EVENTS)
    assert rows(version=1) == good  # time travel to before the damage still works


def test_damage_before_the_last_checkpoint_does_not_reach_readers(any_lake):
    commits()
    expected = rows()
    lake.checkpoint(EVENTS)
    truncate(log_entry(2))
    remove(log_entry(1))
    assert rows() == expected


def test_maintenance_reports_a_corrupt_table_and_still_maintains_the_others(
    local_lake, prefect_api
):
    commits()
    lake.append(ORDERS, samples.orders(100))
    lake.append(ORDERS, samples.orders(100, seed=1))
    truncate(log_entry(2))

    with pytest.raises(LakeError, match=r"maintenance failed for \['silver/events'\]"):
        table_maintenance(tables=[EVENTS.path, ORDERS.path])
    assert lake.layout(ORDERS).checkpoint_version == lake.version(ORDERS)
