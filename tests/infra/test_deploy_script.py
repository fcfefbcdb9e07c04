"""deploy/ec2-deploy.sh, the script `aws ssm send-command` runs on the host, against a real server.

Releases are built by deploy/build-release.sh from commits of a temporary git repository into a
local folder that stands for the artifacts bucket. The host's paths and systemd restarts are
swapped through the script's DEPLOY_* variables for a temporary app folder, venv and a real
`prefect worker` process; everything else runs as on EC2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "deploy" / "ec2-deploy.sh"
BUILD = REPO_ROOT / "deploy" / "build-release.sh"
POOL = "deploy-script-test"

pytestmark = pytest.mark.slow

# The worker restart a commit ships: the healthy one starts a real worker on the pool, the
# broken one (a commit whose worker cannot start) stops the old worker and starts none.
STOP_PREVIOUS_WORKER = """\
#!/usr/bin/env bash
set -euo pipefail
echo worker-restart >>"$EVENTS"
if [ -f "$WORKER_PID_FILE" ]; then
  pid="$(cat "$WORKER_PID_FILE")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
"""
RESTART_WORKER = (
    STOP_PREVIOUS_WORKER
    + """\
nohup "$DEPLOY_VENV/bin/python" -m prefect worker start --pool "$DEPLOY_WORK_POOL" \\
  --type process </dev/null >>"$WORKER_LOG" 2>&1 &
echo $! >"$WORKER_PID_FILE"
"""
)
BROKEN_RESTART_WORKER = STOP_PREVIOUS_WORKER + 'echo "worker: ImportError in this commit" >&2\n'


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def commit_files(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        (repo / name).chmod(0o755 if name.endswith(".sh") else 0o644)
    git(repo, "add", *files)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def prefect_yaml(version: str, *names: str) -> str:
    deployments = "".join(
        f"""
              - name: {name}
                entrypoint: probe_flows.py:probe
                description: "{version}"
                work_pool: {{name: {POOL}}}"""
        for name in names
    )
    return (
        textwrap.dedent(
            """\
        name: deploy-probe
        pull:
          - prefect.deployments.steps.set_working_directory:
              directory: "{{ $LAKE_PROJECT_DIR }}"
        deployments:"""
        )
        + textwrap.dedent(deployments)
        + "\n"
    )


def project_files(version: str) -> dict[str, str]:
    """A minimal project shaped like this one: pyproject, lock, prefect.yaml, one flow, and the
    host scripts a release carries (this repository's deploy script and work pool step)."""
    return {
        "pyproject.toml": textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools>=69"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "deploy-probe"
            version = "0.1.0"
            [tool.setuptools]
            py-modules = ["probe_flows"]
            """
        ),
        "requirements.lock": "# nothing beyond the venv's own packages\n",
        "prefect.yaml": prefect_yaml(version, "probe"),
        "probe_flows.py": textwrap.dedent(
            """\
            from prefect import flow


            @flow
            def probe() -> None:
                pass
            """
        ),
        "restart-worker.sh": RESTART_WORKER,
        "deploy/ec2-deploy.sh": SCRIPT.read_text(),
        "docker/bin/work-pool.sh": (REPO_ROOT / "docker" / "bin" / "work-pool.sh").read_text(),
    }


def release(host: dict[str, str], files: dict[str, str], message: str) -> str:
    """Commit `files` to the origin and build its release into the releases folder."""
    origin = Path(host["ORIGIN"])
    commit = commit_files(origin, files, message)
    result = subprocess.run(
        ["bash", str(BUILD), commit, f"{host['DEPLOY_RELEASES_URI']}/{commit}.tar.gz"],
        cwd=origin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return commit


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Iterator[dict[str, str]]:
    """A fake host layout: an origin repository, a releases folder, an app folder, a venv."""
    root = tmp_path_factory.mktemp("host")
    origin = root / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    releases = root / "releases"
    releases.mkdir()

    # A venv like the host's that sees this project's packages (pip included) through a .pth
    # file instead of downloading them; pip still builds the probe project in isolation.
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3.*")) / "site-packages"
    (site / "project-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    pid_file = root / "worker.pid"
    events = root / "events.log"
    app = root / "app"
    env = {
        **os.environ,
        # The host venv's bin has `prefect`; this one gets it from the project's venv.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PREFECT_API_URL": prefect_api,
        "DEPLOY_CONF_FILE": str(root / "absent.env"),
        "DEPLOY_ENV_FILE": str(root / "absent.env"),
        "DEPLOY_RELEASES_URI": str(releases),
        "DEPLOY_APP_DIR": str(app),
        "DEPLOY_VENV": str(venv),
        "DEPLOY_DB_UPGRADE_CMD": (
            f"echo db-upgrade >>{events} && PREFECT_API_DATABASE_CONNECTION_URL="
            f"sqlite+aiosqlite:///{root}/migrated.db {venv}/bin/python -m prefect "
            "server database upgrade -y"
        ),
        "DEPLOY_SERVER_RESTART_CMD": f"echo server-restart >>{events}",
        "DEPLOY_RESTART_CMD": f"bash {app}/current/restart-worker.sh",
        "DEPLOY_WORK_POOL": POOL,
        "DEPLOY_HEALTH_TIMEOUT": "60",
        "DEPLOY_LOCK_FILE": str(root / "deploy.lock"),
        "WORKER_PID_FILE": str(pid_file),
        "WORKER_LOG": str(root / "worker.log"),
        "EVENTS": str(events),
        "ORIGIN": str(origin),
    }
    try:
        yield env
    finally:
        if pid_file.exists():
            stop_worker(int(pid_file.read_text()))


def stop_worker(pid: int) -> None:
    """The worker is not our child (the restart command detached it): signal it and poll."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def run_deploy(env: dict[str, str], target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), target], env=env, capture_output=True, text=True, timeout=240
    )


def deployments(api: str) -> dict[str, str]:
    """Every deployment's name -> description."""
    response = httpx.post(f"{api}/deployments/filter", json={}, timeout=10)
    response.raise_for_status()
    return {d["name"]: d["description"] for d in response.json()}


def events(host: dict[str, str]) -> list[str]:
    path = Path(host["EVENTS"])
    found = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return found


def current(host: dict[str, str]) -> str:
    return Path(host["DEPLOY_APP_DIR"], "current").resolve().name


def test_first_deploy_installs_the_release_migrates_and_restarts_server_then_worker(
    host, prefect_api
):
    first = release(host, project_files("v1"), "v1")

    result = run_deploy(host, first)

    assert result.returncode == 0, result.stderr
    assert current(host) == first
    assert Path(host["DEPLOY_APP_DIR"], "current", "REVISION").read_text() == first
    assert deployments(prefect_api) == {"probe": "v1"}
    # No Prefect version was recorded: the database is migrated before the server restarts,
    # and the worker restarts last.
    assert events(host) == ["db-upgrade", "server-restart", "worker-restart"]
    assert Path(host["DEPLOY_APP_DIR"], "..", "migrated.db").resolve().exists()
    os.kill(int(Path(host["WORKER_PID_FILE"]).read_text()), 0)  # the new worker runs


def test_a_deploy_keeps_the_paused_pool_and_restarts_only_the_worker(host, prefect_api):
    pushed = release(host, {"prefect.yaml": prefect_yaml("v2", "probe")}, "v2")
    httpx.patch(
        f"{prefect_api}/work_pools/{POOL}", json={"is_paused": True}, timeout=10
    ).raise_for_status()

    result = run_deploy(host, pushed)

    assert result.returncode == 0, result.stderr
    assert current(host) == pushed
    assert deployments(prefect_api) == {"probe": "v2"}
    assert events(host) == ["worker-restart"]  # same Prefect version: the server keeps running
    pool = httpx.get(f"{prefect_api}/work_pools/{POOL}", timeout=10).json()
    assert pool["is_paused"] is True
    assert f"deployed {pushed}" in result.stderr


def test_failed_release_is_rolled_back_with_the_deployments_it_added_removed(host, prefect_api):
    previous = current(host)
    broken = release(
        host,
        {
            "prefect.yaml": prefect_yaml("v3-broken", "probe", "probe-added-by-v3"),
            "restart-worker.sh": BROKEN_RESTART_WORKER,
        },
        "v3 breaks the worker and adds a deployment",
    )
    env = {**host, "DEPLOY_HEALTH_TIMEOUT": "45"}  # also the rollback's worker: on a busy CI

    result = run_deploy(env, broken)

    assert result.returncode == 1, result.stderr
    assert "unhealthy: no new worker polling" in result.stderr
    assert f"rolling back to {previous}" in result.stderr
    assert f"rolled back to {previous}" in result.stderr
    assert current(host) == previous
    assert deployments(prefect_api) == {"probe": "v2"}
    os.kill(int(Path(host["WORKER_PID_FILE"]).read_text()), 0)
