"""deploy/ec2-deploy.sh, the script `aws ssm send-command` runs on the host, against a real server.

The host's paths and systemd restart are swapped through the script's DEPLOY_* variables for a
temporary clone, venv and a real `prefect worker` process; everything else runs as on EC2.
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
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "deploy" / "ec2-deploy.sh"
POOL = "deploy-script-test"

pytestmark = pytest.mark.slow

# The worker restart a commit ships: the healthy one starts a real worker on the pool, the
# broken one (a commit whose worker cannot start) stops the old worker and starts none.
STOP_PREVIOUS_WORKER = """\
#!/usr/bin/env bash
set -euo pipefail
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
        (repo / name).write_text(text)
    git(repo, "add", *files)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def project_files(version: str) -> dict[str, str]:
    """A minimal project shaped like this one: pyproject, lock, prefect.yaml, one flow."""
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
        "prefect.yaml": textwrap.dedent(
            f"""\
            name: deploy-probe
            pull:
              - prefect.deployments.steps.set_working_directory:
                  directory: "{{{{ $LAKE_PROJECT_DIR }}}}"
            deployments:
              - name: probe
                entrypoint: probe_flows.py:probe
                description: "{version}"
                work_pool: {{name: {POOL}}}
            """
        ),
        "probe_flows.py": textwrap.dedent(
            """\
            from prefect import flow


            @flow
            def probe() -> None:
                pass
            """
        ),
        "restart-worker.sh": RESTART_WORKER,
    }


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Iterator[dict[str, str]]:
    """A fake host layout: origin repo, a clone at the first commit, a venv, the script's env."""
    root = tmp_path_factory.mktemp("host")
    origin = root / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    commit_files(origin, project_files("v1"), "v1")
    clone = root / "repo"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)

    # A venv like the host's that sees this project's packages (pip included) through a .pth
    # file instead of downloading them; pip still builds the probe project in isolation.
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3.*")) / "site-packages"
    (site / "project-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    pid_file = root / "worker.pid"
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "DEPLOY_REPO_DIR": str(clone),
        "DEPLOY_VENV": str(venv),
        "DEPLOY_ENV_FILE": str(root / "absent.env"),
        "DEPLOY_RESTART_CMD": f"bash {clone}/restart-worker.sh",
        "DEPLOY_WORK_POOL": POOL,
        "DEPLOY_HEALTH_TIMEOUT": "60",
        "DEPLOY_LOCK_FILE": str(root / "deploy.lock"),
        "WORKER_PID_FILE": str(pid_file),
        "WORKER_LOG": str(root / "worker.log"),
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


def deployed_description(api: str) -> str:
    response = httpx.get(f"{api}/deployments/name/probe/probe", timeout=10)
    response.raise_for_status()
    return str(response.json()["description"])


def test_deploy_installs_registers_and_restarts_worker_at_the_pushed_commit(host, prefect_api):
    origin = Path(host["ORIGIN"])
    pushed = commit_files(origin, {"prefect.yaml": project_files("v2")["prefect.yaml"]}, "v2")

    result = run_deploy(host, pushed)

    assert result.returncode == 0, result.stderr
    assert git(Path(host["DEPLOY_REPO_DIR"]), "rev-parse", "HEAD") == pushed
    assert deployed_description(prefect_api) == "v2"
    pid = int(Path(host["WORKER_PID_FILE"]).read_text())
    os.kill(pid, 0)  # the restarted worker is running
    assert "installing dependencies from requirements.lock" in result.stderr
    assert f"deployed {pushed}" in result.stderr


def test_failed_health_check_rolls_back_to_the_previous_commit(host, prefect_api):
    repo = Path(host["DEPLOY_REPO_DIR"])
    previous = git(repo, "rev-parse", "HEAD")
    broken = commit_files(
        Path(host["ORIGIN"]),
        {
            "prefect.yaml": project_files("v3-broken")["prefect.yaml"],
            "restart-worker.sh": BROKEN_RESTART_WORKER,
        },
        "v3 breaks the worker",
    )
    env = {**host, "DEPLOY_HEALTH_TIMEOUT": "20"}

    result = run_deploy(env, broken)

    assert result.returncode == 1, result.stderr
    assert "unhealthy: no new worker polling" in result.stderr
    assert f"rolling back to {previous}" in result.stderr
    assert f"rolled back to {previous}" in result.stderr
    assert git(repo, "rev-parse", "HEAD") == previous
    rolled_back = yaml.safe_load((repo / "prefect.yaml").read_text())
    assert deployed_description(prefect_api) == rolled_back["deployments"][0]["description"]
    os.kill(int(Path(host["WORKER_PID_FILE"]).read_text()), 0)
