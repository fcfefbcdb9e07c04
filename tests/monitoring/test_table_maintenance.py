"""Table maintenance: the same rows afterwards, fewer files, a checkpoint, time travel kept."""

import os
import time
from pathlib import Path

import pytest

from flows import samples
from flows.catalog import EVENTS, ORDERS
from flows.core import lake
from flows.core.errors import ConfigurationError
from flows.monitoring.table_maintenance import (
    table_maintenance,
    vacuum_retention,
)

COMMITS = 12


def small_commits(commits=COMMITS, rows=600):
    data = samples.events(rows)
    step = rows // commits
    for start in range(0, rows, step):
        lake.append(EVENTS, data.slice(start, step))


def events_rows(version=None):
    return lake.read(EVENTS, version=version).sort("event_id").to_dicts()


@pytest.mark.parametrize(
    ("requested", "floor", "force", "expected"),
    [
        (168, 168, False, 168),
        (720, 168, False, 720),
        (0, 168, True, 0),
        (24, 24, False, 24),
    ],
)
def test_vacuum_retention_respects_the_floor(requested, floor, force, expected):
    assert vacuum_retention(requested, floor, force=force) == expected


@pytest.mark.parametrize(("requested", "force"), [(0, False), (167, False), (-1, True)])
def test_vacuum_retention_below_the_floor_needs_force(requested, force):
    with pytest.raises(ConfigurationError, match="--retention-hours"):
        vacuum_retention(requested, 168, force=force)


def test_maintenance_keeps_the_rows_and_lowers_the_file_count(any_lake, prefect_api):
    small_commits()
    first_version_rows = events_rows(version=0)
    expected = events_rows()
    before = lake.layout(EVENTS)

    [report] = table_maintenance(tables=[EVENTS.path], z_order={EVENTS.path: ["event_time"]})

    after = lake.layout(EVENTS)
    assert events_rows() == expected
    assert (before.data_files, after.data_files) == (COMMITS, 1)
    assert (after.checkpoint_version, after.commits_to_replay) == (after.version, 0)
    assert lake.history(EVENTS, limit=1)[0]["operation"] == "OPTIMIZE"
    # The default retention keeps the compacted-away files: time travel still works.
    assert after.stored_files == before.stored_files + after.data_files
    assert events_rows(version=0) == first_version_rows
    assert report["data_files"] == f"{COMMITS} -> {after.data_files}"


def test_forced_vacuum_removes_the_old_files(local_lake, prefect_api):
    small_commits()
    expected = events_rows()
    with pytest.raises(ConfigurationError, match="below the floor"):
        table_maintenance(tables=[EVENTS.path], retention_hours=0)
    assert lake.layout(EVENTS).data_files == COMMITS  # refused before touching anything

    table_maintenance(tables=[EVENTS.path], retention_hours=0, force=True)

    after = lake.layout(EVENTS)
    assert events_rows() == expected
    assert after.stored_files == after.data_files == 1


def test_a_checkpoint_lets_the_table_open_without_replaying_the_log(local_lake):
    small_commits(commits=40, rows=400)
    before = lake.layout(EVENTS)
    assert (before.checkpoint_version, before.commits_to_replay) == (None, before.version + 1)

    assert lake.checkpoint(EVENTS) == before.version

    log = Path(lake.location(EVENTS)) / "_delta_log"
    assert (log / f"{before.version:020d}.checkpoint.parquet").exists()
    assert (log / "_last_checkpoint").exists()
    after = lake.layout(EVENTS)
    assert (after.version, after.commits_to_replay) == (before.version, 0)
    assert len(events_rows()) == 400


def test_expired_log_entries_are_removed_and_the_table_still_opens(local_lake):
    small_commits(commits=10, rows=100)
    expected = events_rows()
    log = Path(lake.location(EVENTS)) / "_delta_log"
    forty_days_ago = time.time() - 40 * 86_400
    for entry in log.iterdir():
        os.utime(entry, (forty_days_ago, forty_days_ago))
    version = lake.checkpoint(EVENTS)

    lake.expire_log(EVENTS)

    assert sorted(p.name for p in log.glob("*.json")) == [f"{version:020d}.json"]
    assert lake.version(EVENTS) == version
    assert events_rows() == expected


def test_a_zero_config_run_on_an_empty_lake_seeds_events_and_compacts_them(local_lake, prefect_api):
    [report] = table_maintenance()

    assert report["table"] == EVENTS.path
    assert report["data_files"] == "20 -> 1"
    assert lake.read(EVENTS).height == 10_000


def test_a_default_run_compacts_and_vacuums_the_raw_tables_of_the_api_and_database_ingests(
    local_lake, prefect_api
):
    raw_tables = [ORDERS.source_bronze("api"), ORDERS.source_bronze("postgres")]
    data = samples.orders(300)
    for table in raw_tables:
        for start in range(0, 300, 50):
            lake.append(table, data.slice(start, 50))

    reports = table_maintenance(retention_hours=0, force=True)

    assert {r["table"] for r in reports} == {t.path for t in raw_tables}
    for table in raw_tables:
        after = lake.layout(table)
        assert after.stored_files == after.data_files == 1
        assert lake.read(table).height == 300
        assert "OPTIMIZE" in {c["operation"] for c in lake.history(table, limit=5)}
