"""A background Prefect server (`python -m flows.server start`) is used by flows started from any
shell without PREFECT_API_URL; a stale state file is ignored; the suite never sees a user's one."""

import os
import signal
import subprocess
import sys
import threading

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

from bench.servers import free_port
from flows.core import local_server
from flows.core.local_server import ServerState, background_api_url, read_state, state_path
from tests.conftest import REPO_ROOT


@pytest.fixture
def prefect_home(tmp_path, monkeypatch):
    """A Prefect home of the test's own, with no server configured."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(updates={PREFECT_HOME: tmp_path}, restore_defaults={PREFECT_API_URL}):
        yield tmp_path


@pytest.mark.parametrize("text", [None, "", "{", '{"api_url": "x"}', '{"api_url": 1, "pid": "a"}'])
def test_a_missing_or_damaged_state_file_reads_as_no_server(tmp_path, text):
    path = tmp_path / "state.json"
    if text is not None:
        path.write_text(text)
    assert read_state(path) is None


def test_a_stale_state_file_is_ignored(prefect_home):
    ServerState(f"http://127.0.0.1:{free_port()}/api", 1, "log").save(state_path())
    assert state_path().parent == prefect_home
    assert background_api_url() is None


def test_a_configured_server_wins_over_the_state_file(prefect_home, monkeypatch):
    monkeypatch.setattr(local_server, "answers", lambda url: True)
    ServerState("http://127.0.0.1:9/api", 1, "log").save(state_path())
    assert background_api_url() == "http://127.0.0.1:9/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:8/api")
    assert background_api_url() is None


def test_the_suite_ignores_the_users_prefect_home_and_server():
    assert os.environ["PREFECT_HOME"].endswith(os.path.join(".pytest_cache", "prefect-home"))


def flow_runs(api_url):
    answer = httpx.post(f"{api_url}/flow_runs/filter", json={}, timeout=10)
    answer.raise_for_status()
    return {run["id"] for run in answer.json()}


def test_a_flow_started_from_a_shell_without_prefect_api_url_uses_the_recorded_server(
    prefect_api, tmp_path
):
    home = tmp_path / "home"
    ServerState(prefect_api, 1, "log").save(home / local_server.STATE_FILE)
    env = {name: value for name, value in os.environ.items() if name != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(home), "LAKE_URI": str(tmp_path / "lake")}
    before = flow_runs(prefect_api)
    flow = REPO_ROOT / "flows" / "examples" / "example_data_pipeline.py"
    done = subprocess.run([sys.executable, str(flow)], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "temporary server" not in done.stdout + done.stderr
    assert len(flow_runs(prefect_api) - before) == 1


def test_start_reports_a_running_server_and_stop_ends_its_process_group(prefect_api, tmp_path):
    home = tmp_path / "home"
    env = {name: value for name, value in os.environ.items() if name != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(home)}
    ServerState(prefect_api, 1, "log").save(home / local_server.STATE_FILE)
    command = [sys.executable, "-m", "flows.server"]
    started = subprocess.run([*command, "start"], env=env, cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert f"Already running: {prefect_api}" in started.stdout
    group = subprocess.Popen(["sleep", "60"], start_new_session=True)
    reaper = threading.Thread(target=group.wait)  # the server is never the stopper's child
    reaper.start()
    ServerState(prefect_api, group.pid, "log").save(home / local_server.STATE_FILE)
    stopped = subprocess.run([*command, "stop"], env=env, cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert "Stopped" in stopped.stdout
    reaper.join(timeout=10)
    assert group.returncode == -signal.SIGTERM
    assert not (home / local_server.STATE_FILE).exists()
