"""The compose stack, the worker image and the scripts, checked without a Docker engine."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.platform.stack import (
    COMPOSE_FILE,
    DOCKER,
    REPO_ROOT,
    compose,
    compose_variables,
    resolved_stack,
)

DOCKERFILE = DOCKER / "Dockerfile"
BIN = Path(sys.executable).parent
SHELL_SHEBANG = re.compile(rb"^#!\s*/(usr/)?bin/(env\s+)?(ba)?sh\b")

# Services that run once and exit: the rest must stay up and report health.
ONE_SHOT = {"create-bucket"}


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    """The compose file as the real parser resolves it, with the example secrets."""
    return resolved_stack()


def shell_scripts() -> list[Path]:
    """Every committed shell script: a .sh file or a file with a sh/bash shebang."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.decode()
    found = []
    for name in filter(None, listed.split("\0")):
        path = REPO_ROOT / name
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            first_line = handle.readline(64)
        if name.endswith(".sh") or SHELL_SHEBANG.match(first_line):
            found.append(path)
    return sorted(found)


def test_compose_file_matches_the_compose_spec():
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_parser_accepts_the_stack_with_the_example_env():
    result = compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_the_secrets_from_docker_env(tmp_path):
    empty = tmp_path / ".env"
    empty.touch()
    result = compose("config", "--quiet", env_file=empty)
    assert result.returncode != 0
    assert "in docker/.env" in result.stderr


def test_every_long_running_service_has_a_healthcheck(stack):
    for name, service in stack["services"].items():
        if name not in ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_services_start_only_after_their_dependencies_are_healthy(stack):
    for name, service in stack["services"].items():
        for dependency, options in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert options["condition"] == expected, f"{name} -> {dependency}"
    assert set(stack["services"]["worker"]["depends_on"]) == {
        "prefect-server",
        "s3",
        "create-bucket",
    }


def test_images_are_pinned_and_prefect_matches_the_lock(stack):
    locked = re.search(r"^prefect==(\S+)", (REPO_ROOT / "requirements.lock").read_text(), re.M)
    assert locked is not None
    prefect_image = f"prefecthq/prefect:{locked.group(1)}-python3.11"
    for name, service in stack["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        assert tag not in ("", "latest"), f"{name} uses an unpinned image {image}"
    assert stack["services"]["prefect-server"]["image"] == prefect_image
    assert f"FROM {prefect_image}" in DOCKERFILE.read_text()


def test_prefect_api_requires_auth_and_clients_send_it(stack):
    services = stack["services"]
    server_env = services["prefect-server"]["environment"]
    worker_env = services["worker"]["environment"]
    assert server_env["PREFECT_SERVER_API_AUTH_STRING"]
    assert worker_env["PREFECT_API_AUTH_STRING"] == server_env["PREFECT_SERVER_API_AUTH_STRING"]
    assert worker_env["PREFECT_API_URL"] == "http://prefect-server:4200/api"


def test_worker_writes_the_lake_to_the_compose_s3_store(stack):
    services = stack["services"]
    for name in ("worker", "create-bucket"):
        env = services[name]["environment"]
        assert env["LAKE_URI"].startswith("s3://")
        assert env["AWS_ENDPOINT_URL"] == "http://s3:7070"
        assert env["AWS_ACCESS_KEY_ID"] == services["s3"]["environment"]["ROOT_ACCESS_KEY"]


def test_published_ports_listen_on_localhost_only(stack):
    for name, service in stack["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} to every interface"


def test_services_run_the_shared_scripts(stack):
    services = stack["services"]
    assert services["prefect-server"]["command"] == ["/opt/platform/prefect-server.sh"]
    assert services["worker"]["command"] == ["/opt/app/docker/bin/worker.sh"]
    assert services["create-bucket"]["command"][-1] == "/opt/app/docker/bin/create_bucket.py"
    mount = services["prefect-server"]["volumes"][0]
    assert (Path(mount["source"]), mount["target"], mount["read_only"]) == (
        DOCKER / "bin",
        "/opt/platform",
        True,
    )


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [str(BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_worker_image_runs_as_a_non_root_numeric_user():
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), re.M)
    assert users, "the Dockerfile never switches user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0


def test_worker_image_installs_the_project_from_the_lock():
    assert "-c requirements.lock ." in DOCKERFILE.read_text()


def test_shell_scripts_are_found():
    names = {path.name for path in shell_scripts()}
    assert {
        "prefect-server.sh",
        "worker.sh",
        "deploy.sh",
        "test-prefect.sh",
        "init-env.sh",
    } <= names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_shell_script_passes_shellcheck(script):
    result = subprocess.run(
        [str(BIN / "shellcheck"), "--external-sources", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_platform_scripts_are_executable():
    scripts = [path for path in shell_scripts() if DOCKER in path.parents]
    assert scripts
    for script in scripts:
        assert os.access(script, os.X_OK), f"{script} is not executable"


def test_init_env_fills_every_secret_with_a_random_private_value(tmp_path):
    for name in ("init-env.sh", ".env.example"):
        shutil.copy2(DOCKER / name, tmp_path / name)
    env_file = tmp_path / ".env"

    subprocess.run([str(tmp_path / "init-env.sh")], check=True, capture_output=True)
    first = env_file.read_text()
    assert "change-me" not in first
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(
        line.split("=", 1) for line in first.splitlines() if line and not line.startswith("#")
    )
    assert set(values) >= compose_variables() - {"PREFECT_PORT", "S3_PORT", "LAKE_BUCKET"}
    assert len(values["POSTGRES_PASSWORD"]) == 32
    assert values["POSTGRES_PASSWORD"] != values["S3_SECRET_KEY"]

    subprocess.run([str(tmp_path / "init-env.sh")], check=True, capture_output=True)
    assert env_file.read_text() == first, "an existing docker/.env must be left alone"


def test_test_prefect_script_explains_a_missing_docker(tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "dirname"):
        found = shutil.which(tool)
        assert found is not None
        (tools / tool).symlink_to(found)
    result = subprocess.run(
        [str(tools / "bash"), str(DOCKER / "test-prefect.sh")],
        env={"PATH": str(tools)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "docker is not installed" in result.stderr
    assert "make server" in result.stderr


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on this machine")
def test_test_prefect_script_explains_a_missing_compose_plugin_or_engine():
    def works(*args: str) -> bool:
        return subprocess.run(["docker", *args], capture_output=True, check=False).returncode == 0

    if works("compose", "version") and works("info"):
        pytest.skip("a working Docker engine is here; run docker/test-prefect.sh by hand")
    expected = "Compose v2 plugin is missing" if not works("compose", "version") else "engine"
    result = subprocess.run(
        [str(DOCKER / "test-prefect.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert expected in result.stderr


def test_healthchecks_probe_the_ports_the_services_listen_on(stack):
    from prefect.settings.models.worker import WorkerWebserverSettings

    services = stack["services"]
    server_port = services["prefect-server"]["environment"]["PREFECT_SERVER_API_PORT"]
    assert f":{server_port}/api/health" in " ".join(
        services["prefect-server"]["healthcheck"]["test"]
    )
    assert "--with-healthcheck" in (DOCKER / "bin" / "worker.sh").read_text()
    worker_port = WorkerWebserverSettings().port
    assert f":{worker_port}/health" in " ".join(services["worker"]["healthcheck"]["test"])
    s3_command = services["s3"]["command"]
    s3_port = s3_command[s3_command.index("--port") + 1].lstrip(":")
    health_path = s3_command[s3_command.index("--health") + 1]
    assert f":{s3_port}{health_path}" in " ".join(services["s3"]["healthcheck"]["test"])
    assert services["worker"]["environment"]["AWS_ENDPOINT_URL"].endswith(f":{s3_port}")


def test_worker_build_context_sends_every_file_the_dockerfile_copies():
    allowed = {
        line[1:].strip().rstrip("/")
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert source.rstrip("/") in allowed, f"{source} is excluded from the build context"
