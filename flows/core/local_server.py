"""A Prefect server left running in the background (`python -m flows.server start`, or
`make server-up`): its address is kept in a state file under the Prefect home, and a flow started
from any shell afterwards runs against it without exporting PREFECT_API_URL. A file whose server
no longer answers is ignored, so the flow falls back to Prefect's temporary server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

STATE_FILE = "datalake-server.json"
HEALTH_TIMEOUT_SECONDS = 1.0
"""A server on 127.0.0.1 answers its health check in milliseconds; longer means it is gone."""


@dataclass(frozen=True)
class ServerState:
    """The background server: its API address, its process (group) id and its log file."""

    api_url: str
    pid: int
    log: str

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)))


def state_path() -> Path:
    """The state file under the Prefect home (PREFECT_HOME, ~/.prefect by default)."""
    return Path(get_current_settings().home) / STATE_FILE


def read_state(path: Path) -> ServerState | None:
    """The state in `path`, or None when there is none or it cannot be read."""
    try:
        fields = json.loads(path.read_text())
        return ServerState(str(fields["api_url"]), int(fields["pid"]), str(fields["log"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def answers(api_url: str) -> bool:
    """Whether a Prefect server answers its health check at `api_url`."""
    try:
        return httpx.get(f"{api_url}/health", timeout=HEALTH_TIMEOUT_SECONDS).is_success
    except httpx.HTTPError:
        return False


def background_api_url() -> str | None:
    """The background server's API address, when no server is configured (PREFECT_API_URL in
    the environment or the Prefect profile) and the state file names one that answers."""
    if os.environ.get("PREFECT_API_URL") or get_current_settings().api.url:
        return None
    state = read_state(state_path())
    return state.api_url if state and answers(state.api_url) else None


@contextmanager
def using_background_server() -> Iterator[str | None]:
    """Within it, Prefect (and any subprocess) talks to the background server if there is one;
    yields its address, or None when the run keeps the configured or a temporary server."""
    api_url = background_api_url()
    if api_url is None:
        yield None
        return
    os.environ["PREFECT_API_URL"] = api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield api_url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
