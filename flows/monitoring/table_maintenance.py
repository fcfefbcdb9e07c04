"""Keep every lake table fast to open and cheap to read: compact, checkpoint, expire logs, vacuum.

Small files (one per append) make scans slow; a long log without checkpoints makes every open
replay it. Vacuum keeps `retention_hours` of history for time travel (never below
LAKE_VACUUM_RETENTION_FLOOR_HOURS unless `--force`), and also removes orphaned files a crashed
writer left behind once they are older than the retention.

    python flows/monitoring/table_maintenance.py                    # every table in the lake
    python flows/monitoring/table_maintenance.py --tables silver/events \
        --z-order silver/events=event_time --retention-hours 336
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from flows import samples
from flows.catalog import EVENTS, selected_tables
from flows.core import errors, lake
from flows.core.artifacts import markdown_table, publish_markdown, publish_table
from flows.core.cli import run_from_command_line
from flows.core.contracts import Table
from flows.core.inputs import allowed_here, write_sample
from flows.core.settings import get_settings
from flows.core.tasks import LAKE_WRITE, existing_tables, retry_if_transient

SAMPLE_COMMITS = 20


@dataclass(frozen=True)
class Maintained:
    """One table before and after maintenance."""

    before: lake.Layout
    after: lake.Layout
    files_compacted: int
    files_vacuumed: int


def vacuum_retention(requested_hours: int, floor_hours: int, *, force: bool) -> int:
    """The retention to vacuum with; below the configured floor only when forced."""
    if requested_hours < 0:
        raise errors.ConfigurationError(f"--retention-hours must be >= 0, got {requested_hours}")
    if requested_hours < floor_hours and not force:
        raise errors.ConfigurationError(
            f"--retention-hours {requested_hours} is below the floor of {floor_hours} h"
            " (LAKE_VACUUM_RETENTION_FLOOR_HOURS): time travel to older versions and readers still"
            " on them would break. Pass --force (force=True) if that is intended."
        )
    return requested_hours


def report_row(result: Maintained) -> dict[str, Any]:
    """One artifact row: what maintenance changed on a table."""
    before, after = result.before, result.after
    return {
        "table": before.table,
        "version": f"{before.version} -> {after.version}",
        "data_files": f"{before.data_files} -> {after.data_files}",
        "stored_files": f"{before.stored_files} -> {after.stored_files}",
        "log_files": f"{before.log_files} -> {after.log_files}",
        "commits_to_replay": f"{before.commits_to_replay} -> {after.commits_to_replay}",
        "files_compacted": result.files_compacted,
        "files_vacuumed": result.files_vacuumed,
        "mb": round(after.data_bytes / 1e6, 2),
    }


@task(**LAKE_WRITE, retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE, task_run_name="maintain-{table.name}-{table.layer}")  # fmt: skip
def maintain(
    table: Table, retention_hours: int, enforce_retention: bool, z_order: list[str]
) -> Maintained:
    """Compact, checkpoint, expire old log entries and vacuum one table."""
    before = lake.layout(table)
    compaction = lake.compact(table, z_order=z_order)
    lake.checkpoint(table)
    lake.expire_log(table)
    removed = lake.vacuum(
        table, retention_hours=retention_hours, enforce_retention=enforce_retention, full=True
    )
    return Maintained(before, lake.layout(table), compaction.files_removed, len(removed))


def sample_commits() -> list[pa.Table]:
    """Sample events in many small commits: a zero-config run has something to maintain."""
    data = samples.events(10_000)
    step = data.num_rows // SAMPLE_COMMITS
    return [data.slice(start, step) for start in range(0, data.num_rows, step)]


@flow(
    name="Table Maintenance",
    description="Compact small files, checkpoint, expire old log entries and vacuum every table.",
)
def table_maintenance(
    tables: list[str] | None = None,
    retention_hours: int = 168,
    force: bool = False,
    z_order: dict[str, list[str]] | None = None,
    sample_data: bool | None = None,
) -> list[dict[str, Any]]:
    """Maintain the named tables (default: every table of the catalog that exists).

    Args:
        tables: table paths (`layer/name`); default: every catalog table that exists.
        retention_hours: vacuum retention; below LAKE_VACUUM_RETENTION_FLOOR_HOURS only with force.
        force: allow a retention below the floor (older versions lose their files).
        z_order: Z-order these tables by these columns, `layer/name=col1,col2`.
        sample_data: on an empty lake, seed sample events so there is something to maintain;
            default: the LAKE_SAMPLE_DATA setting (on for a local lake, off on S3 and in
            deployment runs).
    """
    logger = get_run_logger()
    retention = vacuum_retention(
        retention_hours, get_settings().vacuum_retention_floor_hours, force=force
    )
    if force:
        logger.warning(
            "Vacuum forced to %d h: versions older than that lose their files", retention
        )
    selected = selected_tables(tables)
    present = existing_tables(selected)
    if not present and not tables:
        if not allowed_here(sample_data):
            logger.info("The lake holds no table yet: nothing to maintain")
            return []
        logger.info("The lake is empty: %s gets sample events to maintain", EVENTS.path)
        write_sample(EVENTS, sample_commits)
        present = [EVENTS]
    logger.info("Maintaining %d table(s): %s", len(present), ", ".join(t.path for t in present))

    z_orders = z_order or {}
    futures = [maintain.submit(t, retention, not force, z_orders.get(t.path, [])) for t in present]
    wait(futures)
    done = [f.result() for f in futures if f.state.is_completed()]
    failed = {t.path: str(f.state.message) for t, f in zip(present, futures, strict=True)
              if not f.state.is_completed()}  # fmt: skip

    rows = [report_row(result) for result in done]
    publish_table(
        "table-maintenance", rows, description=f"Retention {retention} h; before -> after"
    )
    failures = [{"table": path, "error": message} for path, message in failed.items()]
    publish_markdown(
        "table-maintenance-summary",
        f"# Table maintenance\n\n{len(done)} table(s) maintained, {len(failed)} failed, vacuum"
        f" retention {retention} h{' (forced)' if force else ''}.\n\n"
        + markdown_table(rows)
        + ("\n\n## Failed\n\n" + markdown_table(failures) if failures else ""),
        description="What maintenance changed on each table",
    )
    if failed:
        raise errors.LakeError(f"maintenance failed for {sorted(failed)}: {failed}")
    return rows


if __name__ == "__main__":
    run_from_command_line(table_maintenance)
