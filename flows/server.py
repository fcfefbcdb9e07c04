"""A local Prefect server in the background, used by every flow started afterwards from any shell
(no PREFECT_API_URL to export): its address goes to a state file under the Prefect home, which
`flows.core.local_server` reads at a flow's start.

    python -m flows.server start      # http://127.0.0.1:4200 (UI and API); or: make server-up
    python -m flows.server status
    python -m flows.server stop       # or: make server-down
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from flows.core.local_server import ServerState, answers, read_state, state_path

START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 15.0


def server_environment(home: Path) -> dict[str, str]:
    """This shell's environment for the server, less the client's settings (another server's
    address or credentials would change what it serves)."""
    client = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")
    kept = {name: value for name, value in os.environ.items() if name not in client}
    return {**kept, "PREFECT_HOME": str(home)}


def start(port: int) -> str:
    """Start the server unless the state file names one that answers; what happened."""
    path = state_path()
    running = read_state(path)
    if running and answers(running.api_url):
        return f"Already running: {running.api_url} (log {running.log})"
    log = path.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=server_environment(path.parent),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this shell; stopped as a process group
        )
    state = ServerState(f"http://127.0.0.1:{port}/api", process.pid, str(log))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not answers(state.api_url):
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise SystemExit(f"the Prefect server did not start on port {port}: see {log}")
        time.sleep(0.3)
    state.save(path)
    return (
        f"Prefect server running: {state.api_url.removesuffix('/api')} (log {log}); flows"
        " started from any shell now use it. Stop it with `python -m flows.server stop`."
    )


def stop() -> str:
    """Stop the server the state file names, and remove the file; what happened."""
    path = state_path()
    state = read_state(path)
    path.unlink(missing_ok=True)
    if state is None:
        return "No background Prefect server is recorded."
    _stop_group(state.pid)
    return f"Stopped the Prefect server at {state.api_url}."


def status() -> str:
    state = read_state(state_path())
    if state and answers(state.api_url):
        return f"Running: {state.api_url} (log {state.log})"
    return "Not running: flows use PREFECT_API_URL if set, else a temporary server per run."


def _stop_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            os.killpg(pid, 0)
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--port", type=int, default=4200, help="the port of `start` (4200)")
    arguments = parser.parse_args(argv)
    if arguments.command == "start":
        print(start(arguments.port))
    else:
        print(stop() if arguments.command == "stop" else status())


if __name__ == "__main__":
    main()
