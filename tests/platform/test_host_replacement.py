"""A host upgrade (`make host-upgrade`) keeps Prefect's state: the database outlives the host.

The EC2 host runs docker/bin/prefect-server.sh and docker/bin/worker.sh on PostgreSQL, which lives
on its own volume. Here a fresh database on the real PostgreSQL server stands for that volume; the
"old host" is one server and worker process pair with its own PREFECT_HOME, the "new host" a new
pair with a new PREFECT_HOME on the same database. (A new venv per host would add minutes and
prove nothing more: the database is the only state the server keeps.)
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.platform.conftest import (
    Platform,
    Worker,
    fresh_database,
    running_server,
)

pytestmark = pytest.mark.slow

POOL = "lake-process"  # the pool docker/bin/worker.sh serves
PROBE_FLOW = "host-replacement-probe"


@pytest.fixture
def state_database(postgres_dsn: str) -> Iterator[str]:
    with fresh_database(postgres_dsn, "prefect_host_replacement") as url:
        yield url


def run_probe_flow(platform: Platform) -> str:
    """Run a one-task flow as an API client (history to keep); returns its flow run id."""
    script = textwrap.dedent(
        f"""
        from prefect import flow, task
        from prefect.runtime import flow_run

        @task
        def one() -> int:
            return 1

        @flow(name="{PROBE_FLOW}")
        def probe() -> str:
            one()
            return flow_run.id

        print(probe())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def register_scheduled_deployment(platform: Platform) -> dict[str, Any]:
    """A deployment on the host's pool with a daily schedule, as `prefect deploy` would leave it."""
    flow: dict[str, Any] = platform.api("POST", "/flows/", json={"name": PROBE_FLOW})
    deployment: dict[str, Any] = platform.api(
        "POST",
        "/deployments/",
        json={
            "name": "daily",
            "flow_id": flow["id"],
            "work_pool_name": POOL,
            "entrypoint": "probe.py:probe",
            "schedules": [{"schedule": {"interval": 86400.0}, "active": True}],
        },
    )
    return deployment


def worker_online(platform: Platform, name_prefix: str) -> bool:
    workers = platform.api("POST", f"/work_pools/{POOL}/workers/filter", json={})
    return any(w["status"] == "ONLINE" and w["name"].startswith(name_prefix) for w in workers)


def wait_for(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.5)


def test_a_new_host_on_the_same_database_keeps_runs_deployments_schedules_and_the_paused_pool(
    state_database: str, tmp_path: Path
):
    auth_string = f"admin:{secrets.token_hex(12)}"
    port = free_port()  # the clients' URL stays; only the processes and PREFECT_HOME change

    with running_server(tmp_path / "old-host", state_database, auth_string, port) as old_host:
        old_worker = Worker(old_host, lake_env={}, name="worker")
        old_worker.start()  # creates the pool, as on first boot
        try:
            finished_run = run_probe_flow(old_host)
            deployment = register_scheduled_deployment(old_host)
            old_host.api(
                "PATCH",
                f"/work_pools/{POOL}",
                json={"is_paused": True, "concurrency_limit": 2},
            )
            before = {
                "run": old_host.api("GET", f"/flow_runs/{finished_run}"),
                "deployment": old_host.api("GET", f"/deployments/{deployment['id']}"),
                "schedules": old_host.api("GET", f"/deployments/{deployment['id']}/schedules"),
            }
        finally:
            old_worker.stop()

    with running_server(tmp_path / "new-host", state_database, auth_string, port) as new_host:
        assert not (tmp_path / "new-host" / "server" / "prefect.db").exists()  # no SQLite
        new_worker = Worker(new_host, lake_env={}, name="worker")
        new_worker.start()  # runs the pool step again, as every boot does
        try:
            run = new_host.api("GET", f"/flow_runs/{finished_run}")
            assert run["state_type"] == "COMPLETED"
            assert run["state"]["id"] == before["run"]["state"]["id"]
            task_runs = new_host.api(
                "POST",
                "/task_runs/filter",
                json={"flow_runs": {"id": {"any_": [finished_run]}}},
            )
            assert [t["state_type"] for t in task_runs] == ["COMPLETED"]

            kept = new_host.api("GET", f"/deployments/{deployment['id']}")
            assert kept["updated"] == before["deployment"]["updated"]
            assert kept["work_pool_name"] == POOL
            schedules = new_host.api("GET", f"/deployments/{deployment['id']}/schedules")
            assert schedules == before["schedules"]
            assert schedules[0]["schedule"]["interval"] == 86400.0

            pool = new_host.api("GET", f"/work_pools/{POOL}")
            assert pool["is_paused"] is True
            assert pool["concurrency_limit"] == 2
            wait_for(lambda: worker_online(new_host, ""), "the new host's worker polls the pool")
        finally:
            new_worker.stop()
