"""The local platform, natively: auth on the API, every deployment registered, runs complete on S3."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import httpx
import pytest

from flows.examples.basic_etl_pipeline import basic_etl_pipeline
from flows.examples.example_data_pipeline import example_data_pipeline
from tests.platform.conftest import (
    BASIC_ETL,
    EXAMPLE_DATA,
    PREFECT_YAML,
    REPO_ROOT,
    SCRIPTS,
    Platform,
    Worker,
    check_example_tables,
    clean_environment,
    flow_run_id,
)

pytestmark = pytest.mark.slow

WORK_POOL = "lake-process"


def test_api_answers_401_without_credentials(platform_server: Platform):
    flows = f"{platform_server.api_url}/flows/filter"
    assert httpx.post(flows, json={}).status_code == 401
    assert httpx.post(flows, json={}, auth=("admin", "wrong")).status_code == 401
    user, password = platform_server.auth_string.split(":", 1)
    assert httpx.post(flows, json={}, auth=(user, password)).status_code == 200


def test_health_answers_without_credentials_for_healthchecks(platform_server: Platform):
    assert httpx.get(f"{platform_server.api_url}/health").status_code == 200


def test_cli_client_needs_the_auth_string(platform_server: Platform):
    assert platform_server.prefect("work-pool", "ls").returncode == 0
    without = {k: v for k, v in platform_server.env.items() if k != "PREFECT_API_AUTH_STRING"}
    result = subprocess.run(
        ["prefect", "work-pool", "ls"], env=without, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "401" in result.stdout + result.stderr


def test_server_refuses_to_start_without_an_auth_string():
    result = subprocess.run(
        [str(SCRIPTS / "prefect-server.sh")],
        env=clean_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "PREFECT_SERVER_API_AUTH_STRING" in result.stderr


def test_worker_creates_the_process_pool_and_reports_healthy(
    platform_server: Platform, platform_worker: Worker
):
    assert httpx.get(platform_worker.health_url).status_code == 200
    pool = platform_server.api("GET", f"/work_pools/{WORK_POOL}")
    assert pool["type"] == "process"
    assert {d["work_pool"]["name"] for d in PREFECT_YAML["deployments"]} == {WORK_POOL}


def test_bucket_step_is_idempotent(platform_lake: dict[str, str]):
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "create_bucket.py")],
        env={"PATH": "/usr/bin:/bin", **platform_lake},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "already exists" in result.stdout


SCHEDULE_KEYS = ("cron", "interval", "rrule", "timezone", "anchor_date", "day_or")


def schedule_matches(declared: dict[str, Any], registered: dict[str, Any]) -> bool:
    """A registered schedule carries every setting its prefect.yaml declaration gives."""
    schedule = registered["schedule"]
    return registered["active"] == declared.get("active", True) and all(
        schedule.get(key) == value for key, value in declared.items() if key in SCHEDULE_KEYS
    )


def test_every_deployment_in_prefect_yaml_is_registered_with_its_schedule(deployed: Platform):
    registered = {(d["entrypoint"], d["name"]): d for d in deployed.deployments()}
    for entry in PREFECT_YAML["deployments"]:
        key = (entry["entrypoint"], entry["name"])
        assert key in registered, f"{key} from prefect.yaml was not registered"
        deployment = registered[key]
        assert deployment["work_pool_name"] == entry["work_pool"]["name"], key
        assert deployment["job_variables"]["working_dir"] == str(REPO_ROOT), key
        assert deployment["parameters"] == entry.get("parameters", {}), key
        assert set(entry.get("tags", [])) <= set(deployment["tags"]), key
        schedules = entry.get("schedules") or []
        assert len(deployment["schedules"]) == len(schedules), key
        for declared_schedule in schedules:
            assert any(schedule_matches(declared_schedule, r) for r in deployment["schedules"]), (
                key,
                declared_schedule,
                deployment["schedules"],
            )
        limit = entry.get("concurrency_limit")
        if limit:
            expected = limit["limit"] if isinstance(limit, dict) else limit
            assert deployment["global_concurrency_limit"]["limit"] == expected, key


def test_pull_step_changes_into_the_deployed_checkout(deployed: Platform):
    for deployment in deployed.deployments():
        assert deployment["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}
        ]


def test_test_prefect_script_runs_a_registered_deployment(deployed: Platform):
    default = re.search(
        r'deployment="\$\{1:-(.+)\}"', (REPO_ROOT / "docker/test-prefect.sh").read_text()
    )
    assert default is not None
    flows = {f["id"]: f["name"] for f in deployed.api("POST", "/flows/filter", json={})}
    registered = {f"{flows[d['flow_id']]}/{d['name']}" for d in deployed.deployments()}
    assert default.group(1) in registered


def test_example_deployments_run_to_completion_and_write_delta_tables_to_s3(
    deployed: Platform,
    platform_worker: Worker,
    platform_lake: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
):
    basic_id = deployed.run_deployment(f"{basic_etl_pipeline.name}/{BASIC_ETL['name']}")
    # The command docker/test-prefect.sh runs: it waits, and its exit status is the run's outcome.
    watched = deployed.prefect(
        "deployment", "run", f"{example_data_pipeline.name}/{EXAMPLE_DATA['name']}",
        "--watch", "--watch-timeout", "300", timeout=330,
    )  # fmt: skip
    assert watched.returncode == 0, watched.stdout + watched.stderr + platform_worker.log_tail()
    assert "finished successfully" in watched.stdout
    example_id = flow_run_id(watched.stdout)
    for name, run_id in ((BASIC_ETL["name"], basic_id), (EXAMPLE_DATA["name"], example_id)):
        run = deployed.wait_for_state(run_id)
        assert run["state_type"] == "COMPLETED", (
            f"{name}: {run['state_name']}\n{platform_worker.log_tail()}"
        )

    check_example_tables(platform_lake, basic_id, example_id, monkeypatch)
