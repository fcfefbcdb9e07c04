"""A local AWS endpoint (moto's server on 127.0.0.1) for runs with no AWS account configured.

The example's zero-config path: like the basic example serving itself a sample API, a run with no
credentials on the standard chain starts moto's server, points the standard `AWS_*` variables
and `LAKE_URI` at it for the run, creates what a real account would already hold (bucket, secret),
and restores the environment afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from flows.core.errors import ConfigurationError
from flows.core.settings import LakeSettings, boto3_session, get_settings

LOCAL_BUCKET = "datalake-aws-example"
LOCAL_REGION = "us-east-1"
STARTUP_SECONDS = 30.0


@dataclass(frozen=True)
class LocalAws:
    """What the local endpoint serves for this run."""

    endpoint: str
    bucket: str


def aws_configured(settings: LakeSettings) -> bool:
    """True when a credentials block is named or the standard chain finds credentials."""
    if settings.aws_credentials_block:
        return True
    return boto3_session(settings).get_credentials() is not None


def local_environment(endpoint: str, bucket: str) -> dict[str, str]:
    """The variables that point boto3, prefect-aws and the lake at the local endpoint."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",  # pragma: allowlist secret (moto accepts any key)
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "LAKE_URI": f"s3://{bucket}/lake",
    }


@contextmanager
def patched_environment(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in the environment, then restore what was there."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's server in a process of its own on a free 127.0.0.1 port; its endpoint.

    A process, not moto's in-process thread: delta-rs holds the interpreter while it writes,
    so a server thread in the same process would never answer it.
    """
    if importlib.util.find_spec("moto") is None:
        raise ConfigurationError(
            "no AWS credentials found and moto is not installed: run `make setup` (it installs"
            " moto[server]) for a local endpoint, or configure AWS (a profile, environment"
            " variables, an instance role, or LAKE_AWS_CREDENTIALS_BLOCK)"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1).raise_for_status()
            return process, endpoint
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise ConfigurationError(f"the local AWS endpoint (moto) did not start on {endpoint}")


@contextmanager
def local_aws(secret_name: str) -> Iterator[LocalAws]:
    """Serve AWS on 127.0.0.1 for the block, with a bucket and a random secret in it."""
    process, endpoint = start_moto()
    local = LocalAws(endpoint=endpoint, bucket=LOCAL_BUCKET)
    try:
        with patched_environment(local_environment(local.endpoint, local.bucket)):
            session = boto3_session(get_settings())
            session.client("s3").create_bucket(Bucket=local.bucket)
            session.client("secretsmanager").create_secret(
                Name=secret_name, SecretString=secrets.token_urlsafe(24)
            )
            yield local
    finally:
        process.terminate()
        process.wait(timeout=15)
