"""The Prefect server dies during a flow run: the run completes or fails cleanly, a re-run converges."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from deltalake import DeltaTable

from tests.conftest import REPO_ROOT, free_port, start_prefect_server, stop

pytestmark = pytest.mark.slow
ROWS = 20_000


def wait_for_running_flow_run(api_url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = httpx.post(f"{api_url}/flow_runs/filter", json={"limit": 5}, timeout=5).json()
        if any(run["state_type"] == "RUNNING" for run in runs):
            return
        time.sleep(0.1)
    raise TimeoutError("the flow run never reached RUNNING")


def run_flow(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "flows/examples/basic_etl_pipeline.py", "--rows", str(ROWS)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def table_counts(lake_dir) -> dict[str, int]:
    return {
        path: DeltaTable(str(lake_dir / path)).to_pyarrow_table().num_rows
        for path in ("bronze/example_orders", "silver/example_orders", "quarantine/example_orders")
    }


class RestartableServer:
    """A Prefect server that can be killed and started again: same port, same database."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.process, self.api_url = start_prefect_server(home, self.port)

    def kill_and_restart(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process, _ = start_prefect_server(self.home, self.port)


@pytest.fixture
def restartable_prefect_server(tmp_path):
    home = tmp_path / "prefect-home"
    home.mkdir()
    server = RestartableServer(home)
    try:
        yield server
    finally:
        stop(server.process)


def test_server_killed_mid_run_then_a_rerun_ends_with_exactly_the_clean_rows(
    restartable_prefect_server, local_lake
):
    server = restartable_prefect_server
    env = {**os.environ, "PREFECT_API_URL": server.api_url, "LAKE_URI": str(local_lake)}
    interrupted = run_flow(env)
    wait_for_running_flow_run(server.api_url)
    server.kill_and_restart()
    first_exit = interrupted.wait(timeout=240)
    assert first_exit in (0, 1), (
        f"the interrupted run neither completed nor failed cleanly: {first_exit}"
    )

    assert run_flow(env).wait(timeout=240) == 0
    assert table_counts(local_lake) == {
        "bronze/example_orders": ROWS + 3,
        "silver/example_orders": ROWS,
        "quarantine/example_orders": 3,
    }
    silver = DeltaTable(str(local_lake / "silver/example_orders")).to_pyarrow_table(
        columns=["order_id"]
    )
    assert len(set(silver.column("order_id").to_pylist())) == ROWS
