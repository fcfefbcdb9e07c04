"""More runs than one worker takes: a second worker process on the same process work pool (what a
fleet host adds) picks up runs, and two deployments run at once, one on each worker."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from flows.examples.basic_etl_pipeline import basic_etl_pipeline
from flows.examples.example_data_pipeline import example_data_pipeline
from tests.platform.conftest import BASIC_ETL, Platform, Worker, declared

pytestmark = pytest.mark.slow

EXAMPLE_DATA = declared("flows/examples/example_data_pipeline.py:example_data_pipeline")


def runs_taken(worker_log: str) -> set[str]:
    """Flow runs a worker submitted and kept (a run another worker took first is aborted)."""
    submitted = set(re.findall(r"submitting flow run '([0-9a-f-]{36})'", worker_log))
    return submitted - set(
        re.findall(r"Aborted submission of flow run '([0-9a-f-]{36})'", worker_log)
    )


def test_two_workers_on_one_pool_run_two_deployments_at_once(
    deployed: Platform, platform_worker: Worker, platform_lake: dict[str, str]
):
    # Each worker takes one run at a time (WORKER_LIMIT=1), so two runs at once need both.
    platform_worker.stop()
    fleet = [
        Worker(deployed, platform_lake, name=f"fleet-{n}", extra_env={"WORKER_LIMIT": "1"})
        for n in (1, 2)
    ]
    try:
        # Both runs wait in the pool before either worker polls, so neither worker sees an empty
        # pool while the other is still starting.
        run_ids = [
            deployed.run_deployment(
                f"{basic_etl_pipeline.name}/{BASIC_ETL['name']}", "--param", "rows=50000"
            ),
            deployed.run_deployment(f"{example_data_pipeline.name}/{EXAMPLE_DATA['name']}"),
        ]
        with ThreadPoolExecutor(len(fleet)) as starting:
            list(starting.map(Worker.start, fleet))
        runs = [deployed.wait_for_state(run_id, timeout=240) for run_id in run_ids]
        logs = [worker.log.read_text(errors="replace") for worker in fleet]
    finally:
        for worker in fleet:
            worker.stop()
        platform_worker.start()

    assert [run["state_type"] for run in runs] == ["COMPLETED", "COMPLETED"], logs
    took = [runs_taken(log) for log in logs]
    assert sorted(map(sorted, took)) == sorted([run_id] for run_id in run_ids)  # one on each
    first, second = ((datetime.fromisoformat(r["start_time"]), datetime.fromisoformat(r["end_time"]))
                     for r in runs)  # fmt: skip
    assert first[0] < second[1]  # the two runs overlapped
    assert second[0] < first[1]
