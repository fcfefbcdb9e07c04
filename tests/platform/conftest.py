"""The compose stack as native processes on 127.0.0.1, started by the same docker/bin scripts.

PostgreSQL (a fresh database on the real server), `prefect server start` with basic auth, moto
standing in for the S3 store, the bucket step, a process worker and `prefect deploy --all`: one
of each per session, all stopped (with every child process) afterwards.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil
import pytest
import yaml

from flows import samples
from flows.catalog import EXAMPLE_CUSTOMERS, EXAMPLE_DAILY_ORDER_TOTALS, EXAMPLE_ORDERS
from flows.core import lake
from flows.core.contracts import Table
from flows.examples.basic_etl_pipeline import basic_etl_pipeline
from tests.conftest import MOTO_CREDENTIALS, free_port, wait_for_http

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "docker" / "bin"
TERMINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
PREFECT_YAML = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())


def declared(entrypoint: str) -> dict[str, Any]:
    """The prefect.yaml entry for a flow."""
    (entry,) = [d for d in PREFECT_YAML["deployments"] if d["entrypoint"] == entrypoint]
    return entry


BASIC_ETL = declared("flows/examples/basic_etl_pipeline.py:basic_etl_pipeline")
EXAMPLE_DATA = declared("flows/examples/example_data_pipeline.py:example_data_pipeline")


def sample_orders(**parameters: Any) -> list[dict[str, Any]]:
    """The records basic_etl_pipeline extracts from the sample source with these parameters."""
    defaults = inspect.signature(basic_etl_pipeline.fn).parameters
    rows, seed = (parameters.get(name, defaults[name].default) for name in ("rows", "seed"))
    return samples.order_records(rows, seed=seed)


def last_commit_run(table: Table) -> str:
    """The flow run that made the table's newest commit."""
    (commit,) = lake.history(table, limit=1)
    return str(commit["prefect.flow_run_id"])


def check_example_tables(
    lake_env: dict[str, str], basic_id: str, example_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example deployments' runs wrote their Delta tables, with the rows their parameters give."""
    for name, value in lake_env.items():
        monkeypatch.setenv(name, value)
    assert lake.location(EXAMPLE_CUSTOMERS).startswith(lake_env["LAKE_URI"])
    for table in (
        EXAMPLE_ORDERS.bronze,
        EXAMPLE_ORDERS,
        EXAMPLE_ORDERS.quarantine,
        EXAMPLE_DAILY_ORDER_TOTALS,
    ):
        assert lake.exists(table), f"{table.path} is missing from {lake_env['LAKE_URI']}"
        assert last_commit_run(table) == basic_id
    assert last_commit_run(EXAMPLE_CUSTOMERS) == example_id
    assert lake.read(EXAMPLE_CUSTOMERS).height == EXAMPLE_DATA["parameters"]["rows"]
    assert lake.read(EXAMPLE_ORDERS.bronze).height == len(sample_orders(**BASIC_ETL["parameters"]))
    assert (
        lake.read(EXAMPLE_ORDERS).height + lake.read(EXAMPLE_ORDERS.quarantine).height
        == lake.read(EXAMPLE_ORDERS.bronze).height
    )


def clean_environment() -> dict[str, str]:
    """This process's environment without Prefect, AWS or lake settings; the venv on PATH."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PREFECT_", "AWS_", "LAKE_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def stop_tree(process: subprocess.Popen[bytes], sig_timeout: float = 15) -> None:
    """Terminate a process and every process it started (flow runs may start new sessions)."""
    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(family, timeout=sig_timeout)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(alive, timeout=5)
    process.wait(timeout=5)


def flow_run_id(cli_output: str) -> str:
    """The flow run id `prefect deployment run` prints."""
    match = re.search(r"UUID: ([0-9a-f-]{36})", cli_output)
    assert match, cli_output
    return match.group(1)


@dataclass
class Platform:
    """A running native stack: where the API is and the environment its clients use."""

    api_url: str
    auth_string: str
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the API with the credentials; returns the decoded JSON body."""
        response = httpx.request(
            method,
            f"{self.api_url}{path}",
            auth=tuple(self.auth_string.split(":", 1)),  # type: ignore[arg-type]
            timeout=30,
            **kwargs,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def prefect(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the `prefect` CLI as a client of this stack."""
        return subprocess.run(
            ["prefect", *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run_deployment(self, name: str, *options: str) -> str:
        """`prefect deployment run <flow>/<deployment> [options]`; returns the flow run's id."""
        result = self.prefect("deployment", "run", name, *options, timeout=330)
        assert result.returncode == 0, result.stdout + result.stderr
        return flow_run_id(result.stdout)

    def wait_for_state(
        self, flow_run_id: str, states: set[str] = TERMINAL_STATES, timeout: float = 150
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run: dict[str, Any] = self.api("GET", f"/flow_runs/{flow_run_id}")
            if run["state_type"] in states:
                return run
            time.sleep(0.5)
        raise TimeoutError(f"flow run {flow_run_id} still {run['state_type']} after {timeout} s")

    def deployments(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api("POST", "/deployments/filter", json={})
        return found


@contextlib.contextmanager
def fresh_database(postgres_dsn: str, prefix: str) -> Iterator[str]:
    """A new database on the real PostgreSQL server, as an asyncpg URL for Prefect; dropped after."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = urlparse(postgres_dsn)
    credentials = dsn.username + (f":{dsn.password}" if dsn.password else "")
    try:
        yield f"postgresql+asyncpg://{credentials}@{dsn.hostname}:{dsn.port or 5432}/{name}"
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def platform_database(postgres_dsn: str) -> Iterator[str]:
    with fresh_database(postgres_dsn, "prefect_platform") as url:
        yield url


@contextlib.contextmanager
def running_server(
    home: Path, database_url: str, auth_string: str, port: int
) -> Iterator[Platform]:
    """docker/bin/prefect-server.sh on `database_url` with basic auth; stopped on exit."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **clean_environment(),
        "PREFECT_HOME": str(home / "server"),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_SERVER_API_AUTH_STRING": auth_string,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_ENABLED": "false",
        # Deployments are registered with their schedules; the tests start every run themselves.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    }
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [str(SCRIPTS / "prefect-server.sh")], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for_http(f"{api_url}/health", process, timeout=120)
        client_env = {
            **clean_environment(),
            "PREFECT_HOME": str(home / "client"),
            "PREFECT_API_URL": api_url,
            "PREFECT_API_AUTH_STRING": auth_string,
        }
        yield Platform(api_url=api_url, auth_string=auth_string, home=home, env=client_env)
    finally:
        stop_tree(process)
        log.close()


@pytest.fixture(scope="session")
def platform_server(
    platform_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """docker/bin/prefect-server.sh on PostgreSQL with basic auth, on a free port."""
    home = tmp_path_factory.mktemp("platform")
    auth_string = f"admin:{secrets.token_hex(12)}"
    with running_server(home, platform_database, auth_string, free_port()) as platform:
        yield platform


def s3_lake_environment(moto_endpoint: str, prefix: str) -> dict[str, str]:
    """Lake settings on moto with a new bucket, made by docker/bin/create_bucket.py."""
    env = {
        **MOTO_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "LAKE_URI": f"s3://{prefix}-{uuid.uuid4().hex[:10]}/lake",
    }
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "create_bucket.py")],
        env={**clean_environment(), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return env


@pytest.fixture(scope="session")
def platform_lake(moto_endpoint: str) -> dict[str, str]:
    """The lake settings the worker gets, as the compose worker gets them."""
    return s3_lake_environment(moto_endpoint, "platform")


@dataclass
class Worker:
    """docker/bin/worker.sh with the compose worker's environment; restartable, like compose's
    `restart: unless-stopped` and systemd's `Restart=always`."""

    platform: Platform
    lake_env: dict[str, str]
    name: str = "worker"
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    health_url: str = ""

    @property
    def log(self) -> Path:
        return self.platform.home / f"{self.name}.log"

    def start(self) -> None:
        """Start the worker and return once its healthcheck answers."""
        health_port = free_port()
        env = {
            **self.platform.env,
            **self.lake_env,
            "PREFECT_HOME": str(self.platform.home / self.name),
            "LAKE_PROJECT_DIR": str(REPO_ROOT),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
            "PREFECT_WORKER_WEBSERVER_PORT": str(health_port),
            **self.extra_env,
        }
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [str(SCRIPTS / "worker.sh")], env=env, stdout=output, stderr=subprocess.STDOUT
            )
        self.health_url = f"http://127.0.0.1:{health_port}/health"
        try:
            wait_for_http(self.health_url, self.process, timeout=90)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            stop_tree(self.process)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="session")
def platform_worker(platform_server: Platform, platform_lake: dict[str, str]) -> Iterator[Worker]:
    worker = Worker(platform_server, platform_lake)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="session")
def deployed(platform_server: Platform, platform_worker: Worker) -> Platform:
    """Every deployment in prefect.yaml, registered by docker/bin/deploy.sh (after the worker
    created the pool, as in compose)."""
    result = subprocess.run(
        [str(SCRIPTS / "deploy.sh")],
        env=platform_server.env,
        cwd=platform_server.home,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return platform_server
