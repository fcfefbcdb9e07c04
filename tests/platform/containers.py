"""Compose services run as podman containers on the host network.

Each service keeps the command, environment, volumes and healthcheck the compose file gives it;
only addresses change: a URL to another service (`http://s3:7070`) becomes the address that
service has on this host, and a service listens on a free port instead of its fixed one.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tests.platform.images import PODMAN, podman

# Podman raises a container's open-file and process limits by default; runc cannot where root
# lacks CAP_SYS_RESOURCE (these machines), so the containers get modest limits of their own.
LIMITS = ("--ulimit", "nofile=8192:8192", "--ulimit", "nproc=4096:4096")
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def duration_seconds(text: str) -> float:
    """A compose duration (`5s`, `1m30s`, `500ms`) in seconds."""
    parts = DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a compose duration: {text!r}")
    return sum(float(number) * UNIT_SECONDS[unit] for number, unit in parts)


def relocated(value: str, hosts: Mapping[str, str]) -> str:
    """A URL to a compose service, pointed at that service's `host:port` on this machine."""
    url = urlsplit(value)
    if not url.scheme or url.hostname not in hosts:
        return value
    credentials = url.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{hosts[url.hostname]}" if credentials else hosts[url.hostname]
    return url._replace(netloc=netloc).geturl()


@dataclass
class Service:
    """One compose service, ready to run as a container on the host network."""

    name: str
    container: str
    image: str
    command: list[str]
    environment: dict[str, str]
    volumes: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    health_budget: float = 0.0

    def options(self) -> list[str]:
        environment = [f"--env={name}={value}" for name, value in self.environment.items()]
        volumes = [f"--volume={volume}" for volume in self.volumes]
        return ["--name", self.container, "--network", "host", *LIMITS, *environment, *volumes]

    def start(self) -> None:
        podman("run", "--detach", *self.options(), self.image, *self.command)

    def run_once(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return podman("run", "--rm", *self.options(), self.image, *self.command, timeout=timeout)

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command in the running container; the result, whatever its exit status."""
        return subprocess.run(
            [*PODMAN, "exec", self.container, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def state(self, field_name: str) -> str:
        return podman(
            "inspect", "--format", f"{{{{.State.{field_name}}}}}", self.container
        ).stdout.strip()

    def logs(self, chars: int = 4000) -> str:
        result = subprocess.run(
            [*PODMAN, "logs", self.container], capture_output=True, text=True, check=False
        )
        return (result.stdout + result.stderr)[-chars:]

    def wait_healthy(self) -> None:
        """Run the compose healthcheck in the container until it passes, within its budget
        (start period + retries x interval)."""
        deadline = time.monotonic() + self.health_budget
        while self.exec(*self.healthcheck).returncode != 0:
            if self.state("Status") != "running":
                raise RuntimeError(f"{self.name} exited:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name} unhealthy after {self.health_budget} s\n{self.logs()}"
                )
            time.sleep(1)


def remove(*services: Service) -> None:
    """Stop (SIGTERM, then SIGKILL after 5 s) and delete the containers, all at once; a second
    try when podman fails (a container caught while stopping once stayed behind)."""
    command = [*PODMAN, "rm", "--force", "--ignore", "--time", "5"]
    command += [service.container for service in services]
    for _ in range(2):
        if subprocess.run(command, capture_output=True, check=False).returncode == 0:
            return


def healthcheck(spec: dict[str, Any]) -> tuple[list[str], float]:
    """The healthcheck's command and its time budget; no command when the service has none."""
    check = spec.get("healthcheck")
    if not check:
        return [], 0.0
    kind, *command = check["test"]
    if kind == "CMD-SHELL":
        command = ["/bin/sh", "-c", *command]
    assert kind in ("CMD", "CMD-SHELL"), check["test"]
    budget = duration_seconds(check.get("start_period", "0s")) + check.get(
        "retries", 3
    ) * duration_seconds(check.get("interval", "30s"))
    return command, budget


def on_host_network(
    stack: dict[str, Any],
    name: str,
    *,
    prefix: str,
    hosts: Mapping[str, str],
    ports: Mapping[int, int] | None = None,
    environment: Mapping[str, str] | None = None,
) -> Service:
    """The compose service `name` with every URL to a service relocated (`hosts`), its own
    ports moved (`ports`: container port -> port on this host) and `environment` on top."""
    spec = stack["services"][name]
    moved = {f"127.0.0.1:{old}": f"127.0.0.1:{new}" for old, new in (ports or {}).items()}
    command, budget = healthcheck(spec)
    for old, new in moved.items():
        command = [part.replace(old, new) for part in command]
    volumes = [
        f"{v['source']}:{v['target']}{':ro' if v.get('read_only') else ''}"
        for v in spec.get("volumes", [])
        if v["type"] == "bind"
    ]
    return Service(
        name=name,
        container=f"{prefix}-{name}",
        image=spec["image"],
        command=list(spec["command"]),
        environment={
            **{key: relocated(value, hosts) for key, value in spec.get("environment", {}).items()},
            **(environment or {}),
        },
        volumes=volumes,
        healthcheck=command,
        health_budget=budget,
    )
