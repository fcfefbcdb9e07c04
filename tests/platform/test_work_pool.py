"""docker/bin/work-pool.sh, the worker's pool step: a pool that exists is never overwritten."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port
from tests.platform.conftest import SCRIPTS, clean_environment


def pool_step(api_url: str, home: Path, pool: str) -> subprocess.CompletedProcess[str]:
    """Run the pool step as worker.sh runs it, as a client of the server at `api_url`."""
    env = {**clean_environment(), "PREFECT_API_URL": api_url, "PREFECT_HOME": str(home)}
    return subprocess.run(
        [str(SCRIPTS / "work-pool.sh"), pool],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_pool(api_url: str, pool: str) -> dict[str, Any]:
    response = httpx.get(f"{api_url}/work_pools/{pool}", timeout=30)
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def test_a_paused_pool_stays_paused_with_its_limit_when_the_worker_starts_again(
    prefect_api: str, tmp_path: Path
):
    pool = f"lake-process-{uuid.uuid4().hex[:8]}"
    created = pool_step(prefect_api, tmp_path, pool)
    assert created.returncode == 0, created.stdout + created.stderr
    assert read_pool(prefect_api, pool)["type"] == "process"

    httpx.patch(
        f"{prefect_api}/work_pools/{pool}",
        json={"is_paused": True, "concurrency_limit": 3},
        timeout=30,
    ).raise_for_status()
    again = pool_step(prefect_api, tmp_path, pool)  # a deploy, crash restart or reboot

    assert again.returncode == 0, again.stdout + again.stderr
    kept = read_pool(prefect_api, pool)
    assert kept["is_paused"] is True
    assert kept["concurrency_limit"] == 3


def test_pool_step_fails_without_creating_anything_when_the_api_does_not_answer(tmp_path: Path):
    silent_api = f"http://127.0.0.1:{free_port()}/api"
    result = pool_step(silent_api, tmp_path, "lake-process")
    assert result.returncode != 0
    assert "work pool" not in result.stdout
