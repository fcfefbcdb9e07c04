"""Fixtures that start real services on free 127.0.0.1 ports and stop them afterwards.

A test that uses one of them, directly or through another fixture, is marked `integration` at
collection (`pytest -m "not integration"` runs the rest); nobody writes the mark by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from bench.servers import free_port, start_prefect_server, stop, wait_for_http

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIRE_SERVICES = os.environ.get("LAKE_TEST_REQUIRE_SERVICES") == "1"
POSTGRES_DSN = os.environ.get("LAKE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret (moto accepts any key)
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SERVICE_FIXTURES = frozenset(
    {
        "moto_endpoint",  # a moto S3 server
        "prefect_api",  # `prefect server start`
        "postgres_dsn",  # the PostgreSQL server
        "platform_server",  # tests/platform: docker/bin/prefect-server.sh on PostgreSQL
        "platform_worker",  # tests/platform: docker/bin/worker.sh
        "interruptible_s3",  # tests/etl/test_s3_data_pipeline_outage.py: moto behind a proxy
        "restartable_prefect_server",  # tests/resilience/test_server_restart.py
    }
)
"""Fixtures that start (or need) a real service; the tests that use them are `integration`."""

pytest_plugins = ["pytester"]


def drain_prefect_workers() -> None:
    """Send buffered logs and events while the server is still up, not at interpreter exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


async def run_output(flow_run_ids: Sequence[uuid.UUID]) -> str:
    """Everything the server holds of these runs that a person reads: log lines, artifacts (data
    and description) and parameters."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    ids = list(flow_run_ids)
    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids))
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
        )
        runs = [await client.read_flow_run(run_id) for run_id in ids]
    assert logs, "the runs sent no logs to the server"
    return "\n".join(
        [log.message for log in logs]
        + [json.dumps(a.data, default=str) + (a.description or "") for a in artifacts]
        + [json.dumps(run.parameters, default=str) for run in runs]
    )


def fixtures_used(item: pytest.Item) -> set[str]:
    """The fixtures a test uses: its closure, plus those a parametrized fixture asks for by name
    at run time (`any_lake` asks for `local_lake` or `s3_lake`)."""
    names = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return names
    arguments = {  # `@pytest.mark.parametrize` values are data, never fixture names
        name.strip()
        for mark in item.iter_markers("parametrize")
        for name in (mark.args[0].split(",") if isinstance(mark.args[0], str) else mark.args[0])
    }
    requested = tuple(
        value
        for name, value in callspec.params.items()
        if name not in arguments and isinstance(value, str)
    )
    if requested:
        # pytest has no public way to close a set of fixture names; this is the one it uses.
        closure, _ = item.session._fixturemanager.getfixtureclosure(item, requested, set())
        names.update(closure)
    return names


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES & fixtures_used(item):
            item.add_marker(pytest.mark.integration)


def pytest_configure(config: pytest.Config) -> None:
    # Keep every test run away from whatever the user's shell or profile points at (a server in
    # PREFECT_API_URL, the background server `make server-up` records under the Prefect home, a
    # profile) and from Prefect's analytics: the fixtures start the servers a test uses.
    prefect_home = Path(config.rootpath) / ".pytest_cache" / "prefect-home"
    prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(prefect_home)
    for name in (
        "PREFECT_API_URL",
        "PREFECT_API_KEY",
        "PREFECT_API_AUTH_STRING",
        "PREFECT_PROFILE",
    ):
        os.environ.pop(name, None)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


def service_unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where every service must be present."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (LAKE_TEST_REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server (real HTTP, enforces conditional put) on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/moto-api/", process)
        yield url
    finally:
        stop(process)


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the standard AWS variables at the moto server; returns them for subprocesses."""
    env = {**MOTO_CREDENTIALS, "AWS_ENDPOINT_URL": moto_endpoint}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def s3_bucket(s3_env: dict[str, str]) -> str:
    """A fresh, empty bucket on the moto server."""
    import boto3

    name = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_lake(s3_bucket: str, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """LAKE_URI on the moto server: the same flows, now writing to S3."""
    uri = f"s3://{s3_bucket}/lake"
    monkeypatch.setenv("LAKE_URI", uri)
    return uri


@pytest.fixture
def local_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LAKE_URI on a fresh local folder."""
    root = tmp_path / "lake"
    monkeypatch.setenv("LAKE_URI", str(root))
    return root


@pytest.fixture(params=["local_lake", "s3_lake"], ids=["local", "s3"])
def any_lake(request: pytest.FixtureRequest) -> str:
    """Run a test once on a local folder and once on moto S3."""
    return str(request.getfixturevalue(request.param))


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real `prefect server start` for the session; in-process flows and subprocesses use it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("prefect-server")
    process, api_url = start_prefect_server(home, free_port())
    try:
        os.environ["PREFECT_API_URL"] = api_url
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield api_url
            drain_prefect_workers()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        stop(process)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The PostgreSQL server this machine and CI start (127.0.0.1:5432, trust auth).

    Session-scoped so module-wide services (tests/platform's Prefect server) can build on it.
    """
    import psycopg

    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as connection:
            connection.execute("select 1")
    except psycopg.OperationalError as error:
        service_unavailable(f"PostgreSQL is not reachable at {POSTGRES_DSN}: {error}")
    return POSTGRES_DSN


class PagedApi:
    """A real HTTP server on 127.0.0.1 serving `records` page by page (`?page=N&per_page=M`).

    `failures[page]` lists status codes answered before that page succeeds (429 comes with
    `Retry-After: 0`), so retry and rate-limit handling is exercised over a real socket.
    """

    def __init__(self, records: list[dict[str, object]], failures: dict[int, list[int]]) -> None:
        self.records = records
        self.failures = {page: list(codes) for page, codes in failures.items()}
        self.requests: list[str] = []
        self.url = ""


@pytest.fixture
def paged_api() -> Iterator[Callable[..., PagedApi]]:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    servers: list[ThreadingHTTPServer] = []

    def start(
        records: list[dict[str, object]], failures: dict[int, list[int]] | None = None
    ) -> PagedApi:
        api = PagedApi(records, failures or {})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(self.path)
                query = parse_qs(urlparse(self.path).query)
                page, per_page = int(query["page"][0]), int(query["per_page"][0])
                pending = api.failures.get(page, [])
                if pending:
                    status = pending.pop(0)
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
                body = json.dumps({"data": api.records[(page - 1) * per_page : page * per_page]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        api.url = f"http://127.0.0.1:{server.server_address[1]}/orders"
        return api

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
