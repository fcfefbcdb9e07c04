"""Servers on 127.0.0.1 for the benchmark and the test suite: free ports, health waits, Prefect.

The test suite imports this module (tests may import bench; bench never imports tests), so a
Prefect server is started one way everywhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Return once `url` answers below 500; raise if `process` exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args!r} exited with {process.returncode} before {url} answered"
            )
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Terminate `process`, killing it if it has not exited after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_prefect_server(
    home: Path, port: int, *, timeout: float = 90.0
) -> tuple[subprocess.Popen[bytes], str]:
    """`prefect server start` on 127.0.0.1:`port` with its SQLite database in `home`; waits for it.

    Returns the process and its API URL; the caller stops it with `stop`. The server inherits no
    PREFECT_ setting (a client's API URL or auth string would change what it serves), and runs in
    its own process group so a test can kill the whole server. Starting it again with the same
    `home` and `port` is a server restart: same database, same URL.
    """
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")},
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    with (home / "server.log").open("ab") as log:
        process = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for_http(f"{api_url}/health", process, timeout=timeout)
    except BaseException:
        stop(process)
        raise
    return process, api_url
