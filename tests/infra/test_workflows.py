"""The GitHub workflows and the host scripts, checked by the linters CI itself would run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # actionlint finds shellcheck on PATH and then also checks every `run:` block.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_workflows_pass_actionlint_with_shellcheck():
    assert WORKFLOWS
    result = run(str(BIN / "actionlint"), *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_the_github_workflow_schema():
    result = run(
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        *map(str, WORKFLOWS),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", ["deploy/ec2-deploy.sh", "terraform/user-data.sh"])
def test_host_scripts_pass_shellcheck(script):
    result = run(str(BIN / "shellcheck"), script)
    assert result.returncode == 0, result.stdout


def load(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / ".github" / "workflows" / name).read_text())


def test_every_job_has_a_timeout_and_every_action_pinned_by_commit_with_its_version():
    lines = "\n".join(path.read_text() for path in WORKFLOWS).splitlines()
    for path in WORKFLOWS:
        for job_name, job in yaml.safe_load(path.read_text())["jobs"].items():
            assert job.get("timeout-minutes"), f"{path.name}:{job_name} has no timeout"
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
                    for line in (line for line in lines if f"uses: {step['uses']}" in line):
                        assert re.search(r"# v\d+\.\d+\.\d+", line), line  # the tag, for updates


def test_ci_runs_the_makefile_targets_a_person_runs():
    runs = [step.get("run", "") for job in load("ci.yml")["jobs"].values() for step in job["steps"]]
    assert ".ci/run" in runs
    assert "make checkov" in runs
    assert any("actionlint" in run for run in runs)
    assert (REPO_ROOT / ".ci" / "run").read_text().rstrip().endswith("make test")


def test_deploy_runs_after_ci_on_main_one_at_a_time_with_oidc():
    workflow = load("deploy.yml")
    trigger = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert trigger["workflow_run"] == {
        "workflows": ["CI"],
        "types": ["completed"],
        "branches": ["main"],
    }
    assert workflow["concurrency"] == {
        "group": "deploy-${{ inputs.environment || vars.DEPLOY_ENVIRONMENT || 'dev' }}",
        "cancel-in-progress": False,
    }
    assert workflow["permissions"]["id-token"] == "write"
    (job,) = workflow["jobs"].values()
    assert "conclusion == 'success'" in job["if"]
    assert "environment" not in job  # it would change the OIDC subject the deploy role trusts
    steps = {step.get("uses", "").split("@")[0]: step for step in job["steps"]}
    credentials = steps["aws-actions/configure-aws-credentials"]["with"]
    assert credentials["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert not any("aws-access-key-id" in step.get("with", {}) for step in job["steps"])
    script = "\n".join(step.get("run", "") for step in job["steps"])
    assert "make synth" in script
    assert "terraform apply -input=false -auto-approve" in script
    assert "aws ssm send-command" in script
    assert 'if [ "$status" != "Success" ]' in script


def test_deploy_ships_a_release_and_the_host_runs_that_release_s_own_deploy_script():
    (job,) = load("deploy.yml")["jobs"].values()
    script = "\n".join(step.get("run", "") for step in job["steps"])
    build = script.index('deploy/build-release.sh "$COMMIT"')
    upload = script.index('"s3://${ARTIFACT_BUCKET}/releases/${COMMIT}.tar.gz"')
    send = script.index("aws ssm send-command")
    assert build < upload < send
    # The SSM command unpacks the new release's deploy script and runs it: no git on the host.
    assert "-O deploy/ec2-deploy.sh" in script
    assert "/opt/datalake/repo" not in script
    assert "git " not in script.split("aws ssm send-command")[0].split("parameters=")[1]
    # Only after a successful deploy does a new host's first boot pick this release.
    assert script.index("releases/current") > script.index('if [ "$status" != "Success" ]')


def test_a_successful_deploy_rolls_every_fleet_group_that_has_hosts_one_refresh_at_a_time():
    (job,) = load("deploy.yml")["jobs"].values()
    script = "\n".join(step.get("run", "") for step in job["steps"])
    assert "terraform output -raw fleet_default_group_name" in script
    assert "terraform output -raw fleet_heavy_group_name" in script
    roll = script[script.index("for group in $FLEET_GROUPS") :]
    assert script.index("releases/current") < script.index("for group in $FLEET_GROUPS")
    assert '[ "$desired" -eq 0 ]' in roll
    assert roll.index("continue\n") < roll.index("aws autoscaling start-instance-refresh")
    assert "--output text 2>/dev/null || echo Unknown)" in roll  # a failed poll is one more wait
    assert "Successful) continue 2 ;;" in roll
    assert "exit 1" in roll


def test_ssm_polling_survives_a_failed_api_call():
    (job,) = load("deploy.yml")["jobs"].values()
    script = "\n".join(step.get("run", "") for step in job["steps"])
    assert "--output text 2>/dev/null ||\n    echo Unknown)" in script
    assert "--query Status --output text 2>/dev/null || echo Pending)" in script


def test_ci_runs_the_platform_script_with_docker_and_keeps_the_logs_of_a_failure():
    job = load("ci.yml")["jobs"]["docker"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert "docker/test-prefect.sh" in runs
    assert any("docker compose version" in run for run in runs)
    (logs,) = [step for step in job["steps"] if " logs " in step.get("run", "")]
    (upload,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert logs["if"] == upload["if"] == "failure()"
    assert upload["with"]["path"] in logs["run"]
    (stop,) = [step for step in job["steps"] if step.get("run") == "make reset"]
    assert stop["if"] == "always()"
