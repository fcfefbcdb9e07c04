"""No secret in the repository, and configured credentials never reach logs, artifacts or commits."""

import json
import subprocess
import uuid

from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

from flows.catalog import EXAMPLE_ORDERS
from flows.core import lake
from flows.examples.basic_etl_pipeline import basic_etl_pipeline
from tests.conftest import REPO_ROOT, drain_prefect_workers, run_output


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return [str(REPO_ROOT / name) for name in listed if (REPO_ROOT / name).is_file()]


def test_repository_contains_no_secrets():
    secrets = SecretsCollection()
    with default_settings():
        for path in repository_files():
            secrets.scan_file(path)
    found = {name: [s.type for s in found] for name, found in secrets.data.items()}
    assert found == {}, (
        "detect-secrets found secrets (mark a deliberate fake with `# pragma: allowlist secret`)"
    )


def test_credentials_never_reach_logs_artifacts_or_delta_commits(s3_lake, prefect_api, monkeypatch):
    import asyncio

    secret = f"never-log-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    state = basic_etl_pipeline(rows=20, return_state=True)
    assert state.is_completed()
    drain_prefect_workers()

    output = asyncio.run(run_output([state.state_details.flow_run_id]))
    assert "Basic ETL summary" in output  # the scan saw the run's real logs
    assert secret not in output
    commits = json.dumps(lake.history(EXAMPLE_ORDERS), default=str)
    assert "prefect.flow_run_id" in commits
    assert secret not in commits
