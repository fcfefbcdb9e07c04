"""The local platform in containers: the worker image built from docker/Dockerfile and the
compose services run by podman, with PostgreSQL and the S3 store from the test fixtures."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from flows.examples.basic_etl_pipeline import basic_etl_pipeline
from flows.examples.example_data_pipeline import example_data_pipeline
from tests.conftest import MOTO_CREDENTIALS, free_port, service_unavailable
from tests.platform.conftest import (
    BASIC_ETL,
    EXAMPLE_DATA,
    PREFECT_YAML,
    Platform,
    check_example_tables,
    clean_environment,
    fresh_database,
)
from tests.platform.containers import Service, on_host_network, remove
from tests.platform.images import DOCKERFILE, build_worker_image, podman
from tests.platform.stack import resolved_stack

pytestmark = pytest.mark.slow

WORK_POOL = "lake-process"
LAKE_STORE = (
    "LAKE_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
)


@dataclass
class ContainerStack:
    """The server and worker containers, and a client of the server on this host."""

    platform: Platform
    server: Service
    worker: Service
    lake_env: dict[str, str]

    def logs(self) -> str:
        return "\n".join(f"--- {s.name}\n{s.logs()}" for s in (self.server, self.worker))


@pytest.fixture(scope="module")
def compose_stack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file resolved with test secrets, a fresh bucket and free ports."""
    missing = [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool) is None]
    if missing:
        service_unavailable(
            f"{', '.join(missing)} not installed (apt-get install podman runc debootstrap)"
        )
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    values = {
        "POSTGRES_PASSWORD": secrets.token_hex(16),  # unused: PostgreSQL is the test server
        "PREFECT_AUTH_STRING": f"admin:{secrets.token_hex(12)}",
        "S3_ACCESS_KEY": MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "S3_SECRET_KEY": MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "LAKE_BUCKET": f"containers-{uuid.uuid4().hex[:10]}",
        "PREFECT_PORT": str(free_port()),
        "S3_PORT": str(urlsplit(moto_endpoint).port),
    }
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return resolved_stack(env_file)


@pytest.fixture(scope="module")
def worker_image(compose_stack: dict[str, Any]) -> str:
    """The worker image compose would build, built by podman (warm: the layer cache answers)."""
    worker = compose_stack["services"]["worker"]
    context = Path(worker["build"]["context"])
    dockerfile = context / worker["build"]["dockerfile"]
    assert dockerfile == DOCKERFILE
    build_worker_image(worker["image"], context, dockerfile)
    image: str = worker["image"]
    return image


def probed_port(spec: dict[str, Any]) -> int:
    """The port on 127.0.0.1 a service's healthcheck probes: the one the service listens on."""
    (port,) = re.findall(r"127\.0\.0\.1:(\d+)", " ".join(spec["healthcheck"]["test"]))
    return int(port)


@pytest.fixture(scope="module")
def container_stack(
    compose_stack: dict[str, Any],
    worker_image: str,
    postgres_dsn: str,
    moto_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ContainerStack]:
    """Server, bucket step and worker as compose starts them, each waited on by its healthcheck."""
    services = compose_stack["services"]
    (published,) = services["prefect-server"]["ports"]
    server_port, worker_port = int(published["published"]), free_port()
    hosts = {"prefect-server": f"127.0.0.1:{server_port}", "s3": urlsplit(moto_endpoint).netloc}
    prefix = f"lake-test-{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as cleanup:
        server = on_host_network(
            compose_stack, "prefect-server", prefix=prefix, hosts=hosts,
            ports={probed_port(services["prefect-server"]): server_port},
            environment={
                # On the host network the server listens where compose publishes it.
                "PREFECT_SERVER_API_HOST": published["host_ip"],
                "PREFECT_SERVER_API_PORT": str(server_port),
                # The compose `postgres` service is the test server: a database of its own.
                "PREFECT_API_DATABASE_CONNECTION_URL": cleanup.enter_context(
                    fresh_database(postgres_dsn, "prefect_containers")
                ),
            },
        )  # fmt: skip
        worker = on_host_network(
            compose_stack, "worker", prefix=prefix, hosts=hosts,
            ports={probed_port(services["worker"]): worker_port},
            environment={
                "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
                "PREFECT_WORKER_WEBSERVER_PORT": str(worker_port),
            },
        )  # fmt: skip
        home = tmp_path_factory.mktemp("container-client")
        client_env = {
            **clean_environment(),
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": worker.environment["PREFECT_API_URL"],
            "PREFECT_API_AUTH_STRING": worker.environment["PREFECT_API_AUTH_STRING"],
        }
        stack = ContainerStack(
            platform=Platform(
                client_env["PREFECT_API_URL"],
                client_env["PREFECT_API_AUTH_STRING"],
                home,
                client_env,
            ),
            server=server,
            worker=worker,
            lake_env={name: worker.environment[name] for name in LAKE_STORE},
        )
        cleanup.callback(remove, server, worker)
        try:
            server.start()
            server.wait_healthy()
            on_host_network(compose_stack, "create-bucket", prefix=prefix, hosts=hosts).run_once()
            worker.start()
            worker.wait_healthy()
        except Exception:
            print(stack.logs())
            raise
        yield stack


@pytest.fixture(scope="module")
def deployed_stack(container_stack: ContainerStack) -> ContainerStack:
    """Every deployment in prefect.yaml, registered from the worker container (`make deploy`)."""
    deploy = str(Path(container_stack.worker.command[0]).with_name("deploy.sh"))
    result = container_stack.worker.exec(deploy, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return container_stack


def test_worker_runs_as_the_dockerfiles_non_root_user(container_stack: ContainerStack):
    (user,) = re.findall(r"^USER\s+(\d+)", DOCKERFILE.read_text(), re.M)[-1:]
    worker = psutil.Process(int(container_stack.worker.state("Pid")))
    assert worker.uids().real == int(user) != 0
    assert container_stack.worker.exec("id", "-u").stdout.strip() == user


def test_every_deployment_is_registered_from_the_worker_container(deployed_stack: ContainerStack):
    registered = {(d["entrypoint"], d["name"]) for d in deployed_stack.platform.deployments()}
    declared = {(d["entrypoint"], d["name"]) for d in PREFECT_YAML["deployments"]}
    assert registered == declared
    working_dirs = {
        d["job_variables"]["working_dir"] for d in deployed_stack.platform.deployments()
    }
    assert working_dirs == {deployed_stack.worker.environment["LAKE_PROJECT_DIR"]}


def test_example_deployments_run_to_completion_in_the_worker_container(
    deployed_stack: ContainerStack, monkeypatch: pytest.MonkeyPatch
):
    platform = deployed_stack.platform
    basic_id = platform.run_deployment(f"{basic_etl_pipeline.name}/{BASIC_ETL['name']}")
    example_id = platform.run_deployment(f"{example_data_pipeline.name}/{EXAMPLE_DATA['name']}")
    for run_id in (basic_id, example_id):
        run = platform.wait_for_state(run_id, timeout=240)
        assert run["state_type"] == "COMPLETED", f"{run['state_name']}\n{deployed_stack.logs()}"
    check_example_tables(deployed_stack.lake_env, basic_id, example_id, monkeypatch)


def active_schedules() -> set[str]:
    """The deployments prefect.yaml gives at least one active schedule."""
    return {
        d["name"]
        for d in PREFECT_YAML["deployments"]
        if any(schedule.get("active", True) for schedule in d.get("schedules") or [])
    }


def has_upcoming_run(platform: Platform, deployment_id: str) -> bool:
    """The scheduler (not a person) has put a run of the deployment in the future."""
    runs = platform.api(
        "POST",
        "/flow_runs/filter",
        json={
            "flow_runs": {
                "deployment_id": {"any_": [deployment_id]},
                "state": {"type": {"any_": ["SCHEDULED"]}},
            },
            "limit": 20,
        },
    )
    return any(run["auto_scheduled"] for run in runs)


def test_scheduler_creates_upcoming_runs_for_every_active_schedule(deployed_stack: ContainerStack):
    platform = deployed_stack.platform
    ids = {d["name"]: d["id"] for d in platform.deployments()}
    expected = active_schedules()
    assert expected, "prefect.yaml declares no active schedule"
    deadline = time.monotonic() + 150  # the scheduler service loops every 60 s
    while True:
        scheduled = {name for name, id_ in ids.items() if has_upcoming_run(platform, id_)}
        if expected <= scheduled or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert expected - scheduled == set(), "no upcoming runs for these active schedules"
    assert scheduled <= expected, "upcoming runs of deployments without an active schedule"


def test_paused_pool_stays_paused_across_a_worker_restart(deployed_stack: ContainerStack):
    platform = deployed_stack.platform
    paused = platform.prefect("work-pool", "pause", WORK_POOL)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    started = deployed_stack.worker.state("StartedAt")
    podman("restart", "--time", "10", deployed_stack.worker.container)
    deployed_stack.worker.wait_healthy()
    assert deployed_stack.worker.state("StartedAt") != started
    pool = platform.api("GET", f"/work_pools/{WORK_POOL}")
    assert pool["is_paused"], f"the worker restart resumed the pool: {pool['status']}"
