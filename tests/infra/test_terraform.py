"""The synthesized Terraform: what each stack declares, read from the JSON `python main.py` writes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "terraform"))
# The pure parts of the stacks (no cdktn import, so no jsii runtime in this process).
from stacks.config import (  # noqa: E402
    BRANCH_PATTERN,
    REPOSITORY_PATTERN,
    WORK_POOL,
    SynthInputs,
    synth_inputs,
)
from stacks.user_data import render_user_data  # noqa: E402

PLATFORM = ("dev", "prod")
SHELLCHECK = Path(sys.executable).parent / "shellcheck"


def resources(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return stack["resource"][kind]


def only(stack: dict[str, Any], kind: str) -> dict[str, Any]:
    (config,) = resources(stack, kind).values()
    return config


def user_data(stack: dict[str, Any]) -> str:
    return str(only(stack, "aws_instance")["user_data"])


def as_shell(rendered: str) -> str:
    """Terraform's view of the user data turned back into the script the host runs."""
    script = re.sub(r"(?<!\$)\$\{[^}]+\}", "tf-value", rendered)
    return script.replace("$${", "${").replace("%%{", "%{")


# --- synth inputs (pure) ---------------------------------------------------------------------


def test_synth_without_state_bucket_says_what_to_set():
    with pytest.raises(SystemExit, match="TF_STATE_BUCKET is not set"):
        synth_inputs({})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"TF_STATE_BUCKET": "s"},
            SynthInputs("s", "us-east-1", "us-east-1", None, "main"),
        ),
        (
            {"TF_STATE_BUCKET": "s", "AWS_DEFAULT_REGION": "eu-west-1", "GITHUB_REPOSITORY": "a/b"},
            SynthInputs("s", "eu-west-1", "eu-west-1", "a/b", "main"),
        ),
        (
            {
                "TF_STATE_BUCKET": "s",
                "AWS_REGION": "eu-west-1",
                "TF_STATE_REGION": "us-east-2",
                "DEPLOY_BRANCH": "release",
            },
            SynthInputs("s", "us-east-2", "eu-west-1", None, "release"),
        ),
    ],
)
def test_synth_inputs_come_from_the_environment(environ, expected):
    assert synth_inputs(environ) == expected


def test_unknown_user_data_placeholder_is_an_error():
    with pytest.raises(ValueError, match="@@MISSING@@"):
        render_user_data("A=@@A@@\n", {"A": "1", "MISSING": "2"})
    with pytest.raises(ValueError, match="without a value"):
        render_user_data("A=@@A@@ B=@@B@@\n", {"A": "1"})
    assert render_user_data('A="@@A@@" ${B}\n', {"A": "${var.a}"}) == 'A="${var.a}" $${B}\n'


# --- state and variables --------------------------------------------------------------------


def test_every_stack_keeps_its_own_state_in_s3_with_lockfile_locking(stacks, synth_env):
    keys = set()
    for stack in stacks.values():
        backend = stack["terraform"]["backend"]["s3"]
        assert backend["bucket"] == synth_env["TF_STATE_BUCKET"]
        assert backend["region"] == synth_env["TF_STATE_REGION"]
        assert backend["use_lockfile"] is True
        assert backend["encrypt"] is True
        assert "dynamodb_table" not in backend
        keys.add(backend["key"])
    assert keys == {"datalake/github.tfstate", "datalake/dev.tfstate", "datalake/prod.tfstate"}


@pytest.mark.parametrize("name", PLATFORM)
def test_platform_variables_default_to_synth_inputs_and_environment(stacks, synth_env, name):
    variables = stacks[name]["variable"]
    assert variables["region"]["default"] == synth_env["AWS_REGION"]
    assert variables["repository"]["default"] == synth_env["GITHUB_REPOSITORY"]
    assert variables["branch"]["default"] == "main"
    assert variables["instance_type"]["default"] == {"dev": "t3.medium", "prod": "t3.large"}[name]
    assert stacks[name]["provider"]["aws"][0]["region"] == "${var.region}"


@pytest.mark.parametrize(
    ("name", "pattern", "good", "bad"),
    [
        ("repository", REPOSITORY_PATTERN, "acme/data-lake.v2", "acme/*"),
        ("branch", BRANCH_PATTERN, "release/2026", "*"),
    ],
)
def test_repository_and_branch_reject_wildcards(stacks, name, pattern, good, bad):
    for stack in stacks.values():
        (validation,) = stack["variable"][name]["validation"]
        assert validation["condition"] == f'${{can(regex("{pattern}", var.{name}))}}'
    assert re.match(pattern, good)
    assert not re.match(pattern, bad)


def test_environments_do_not_share_names(stacks):
    def names(stack):
        return {
            *(role["name"] for role in resources(stack, "aws_iam_role").values()),
            *(bucket["bucket"] for bucket in resources(stack, "aws_s3_bucket").values()),
            *(group["name"] for group in resources(stack, "aws_security_group").values()),
            *(group["name"] for group in resources(stack, "aws_autoscaling_group").values()),
            *(template["name"] for template in resources(stack, "aws_launch_template").values()),
        }

    assert names(stacks["dev"]).isdisjoint(names(stacks["prod"]))


# --- the lake bucket ------------------------------------------------------------------------


@pytest.mark.parametrize("name", PLATFORM)
def test_lake_bucket_is_versioned_private_and_encrypted_with_a_rotating_key(stacks, name):
    stack = stacks[name]
    lake = resources(stack, "aws_s3_bucket")["lake"]
    assert lake["bucket"].startswith(f"datalake-{name}-")
    assert lake["force_destroy"] is False
    for bucket in ("lake", "logs", "artifacts"):
        versioning = resources(stack, "aws_s3_bucket_versioning")[f"{bucket}_versioning"]
        assert versioning["versioning_configuration"]["status"] == "Enabled"
        block = resources(stack, "aws_s3_bucket_public_access_block")[f"{bucket}_public_access"]
        assert all(
            block[flag]
            for flag in (
                "block_public_acls",
                "block_public_policy",
                "ignore_public_acls",
                "restrict_public_buckets",
            )
        )
    (rule,) = resources(stack, "aws_s3_bucket_server_side_encryption_configuration")[
        "lake_encryption"
    ]["rule"]
    assert rule["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": "${aws_kms_key.lake_key.arn}",
    }
    key = only(stack, "aws_kms_key")
    assert key["enable_key_rotation"] is True
    assert key["policy"] == "${data.aws_iam_policy_document.lake_key_policy.json}"


@pytest.mark.parametrize("name", PLATFORM)
def test_bucket_policies_deny_requests_without_tls(stacks, name):
    documents = stacks[name]["data"]["aws_iam_policy_document"]
    for bucket in ("lake", "logs", "artifacts"):
        policy = resources(stacks[name], "aws_s3_bucket_policy")[f"{bucket}_policy"]
        assert policy["policy"] == f"${{data.aws_iam_policy_document.{bucket}_bucket_policy.json}}"
        deny = documents[f"{bucket}_bucket_policy"]["statement"][0]
        assert deny["effect"] == "Deny"
        assert deny["condition"] == [
            {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}
        ]
        assert deny["resources"] == [
            f"${{aws_s3_bucket.{bucket}.arn}}",
            f"${{aws_s3_bucket.{bucket}.arn}}/*",
        ]


def test_lake_lifecycle_expires_landing_files_and_old_versions(stacks):
    rules = {
        rule["id"]: rule
        for rule in resources(stacks["prod"], "aws_s3_bucket_lifecycle_configuration")[
            "lake_lifecycle"
        ]["rule"]
    }
    assert rules["expire-landing"]["filter"] == [{"prefix": "lake/landing/"}]
    assert rules["expire-landing"]["expiration"] == [{"days": 90}]
    assert rules["expire-old-versions"]["noncurrent_version_expiration"] == [
        {"noncurrent_days": 30}
    ]
    assert all(rule["status"] == "Enabled" for rule in rules.values())
    assert all(rule["abort_incomplete_multipart_upload"] for rule in rules.values())


def test_lake_and_release_access_is_logged_to_the_log_bucket(stacks):
    loggings = resources(stacks["dev"], "aws_s3_bucket_logging")
    for bucket in ("lake", "artifacts"):
        logging = loggings[f"{bucket}_logging"]
        assert logging["bucket"] == f"${{aws_s3_bucket.{bucket}.id}}"
        assert logging["target_bucket"] == "${aws_s3_bucket.logs.id}"
    (delivery,) = [
        s
        for s in stacks["dev"]["data"]["aws_iam_policy_document"]["logs_bucket_policy"]["statement"]
        if s["sid"] == "S3ServerAccessLogs"
    ]
    (source,) = [c for c in delivery["condition"] if c["variable"] == "aws:SourceArn"]
    assert source["values"] == ["${aws_s3_bucket.lake.arn}", "${aws_s3_bucket.artifacts.arn}"]


# --- the host -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PLATFORM)
def test_host_is_hardened_al2023_without_ssh_key(stacks, name):
    stack = stacks[name]
    host = only(stack, "aws_instance")
    assert host["ami"] == "${data.aws_ssm_parameter.al2023_ami.value}"
    assert (
        stack["data"]["aws_ssm_parameter"]["al2023_ami"]["name"]
        == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    )
    assert host["metadata_options"]["http_tokens"] == "required"
    assert host["metadata_options"]["http_put_response_hop_limit"] == 1
    assert host["root_block_device"]["encrypted"] is True
    assert host["ebs_optimized"] is True
    assert host["monitoring"] is True
    assert "key_name" not in host
    assert host["instance_type"] == "${var.instance_type}"
    assert host["iam_instance_profile"] == "${aws_iam_instance_profile.host_profile.name}"


def test_host_security_group_admits_only_the_fleet_on_the_tls_api_port_and_only_https_out(stacks):
    group = resources(stacks["dev"], "aws_security_group")["host_sg"]
    assert not group.get("ingress")
    assert [(rule["protocol"], rule["from_port"], rule["to_port"]) for rule in group["egress"]] == [
        ("tcp", 443, 443)
    ]
    (rule,) = resources(stacks["dev"], "aws_security_group_rule").values()
    assert rule["security_group_id"] == "${aws_security_group.host_sg.id}"
    assert rule["source_security_group_id"].startswith("${aws_security_group.fleet_workers_sg")
    assert (rule["type"], rule["from_port"], rule["to_port"]) == ("ingress", 4443, 4443)
    assert "cidr_blocks" not in rule
    assert "aws_vpc_security_group_ingress_rule" not in stacks["dev"]["resource"]


def test_host_role_is_for_ec2_with_ssm_core_and_an_instance_profile(stacks):
    stack = stacks["dev"]
    role = resources(stack, "aws_iam_role")["host_role"]
    assert role["name"] == "datalake-dev-host"
    (trust,) = stack["data"]["aws_iam_policy_document"]["host_trust"]["statement"]
    assert trust["principals"] == [{"type": "Service", "identifiers": ["ec2.amazonaws.com"]}]
    attached = resources(stack, "aws_iam_role_policy_attachment")["host_ssm_core"]
    assert attached["role"] == "${aws_iam_role.host_role.name}"
    assert attached["policy_arn"].endswith(":iam::aws:policy/AmazonSSMManagedInstanceCore")
    assert only(stack, "aws_iam_instance_profile")["role"] == "${aws_iam_role.host_role.name}"


@pytest.mark.parametrize("name", PLATFORM)
def test_outputs_name_the_host_bucket_and_ui_tunnel(stacks, name):
    outputs = stacks[name]["output"]
    assert outputs["instance_id"]["value"] == "${aws_instance.host.id}"
    assert outputs["lake_bucket"]["value"] == "${aws_s3_bucket.lake.bucket}"
    assert outputs["log_bucket"]["value"] == "${aws_s3_bucket.logs.bucket}"
    assert outputs["lake_uri"]["value"] == "s3://${aws_s3_bucket.lake.bucket}/lake"
    tunnel = outputs["ui_tunnel_command"]["value"]
    assert "aws ssm start-session" in tunnel
    assert "--document-name AWS-StartPortForwardingSession" in tunnel
    assert "portNumber=4200,localPortNumber=4200" in tunnel


# --- user data ------------------------------------------------------------------------------


def test_user_data_passes_shellcheck(stacks):
    result = subprocess.run(
        [str(SHELLCHECK), "--shell=bash", "-"],
        input=as_shell(user_data(stacks["dev"])),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_user_data_units_configure_prefect_through_environment_lines(stacks):
    script = as_shell(user_data(stacks["prod"]))
    assert 'LAKE_URI="s3://tf-value/lake"' in script
    assert 'REPOSITORY="tf-value"' in script
    worker = script[script.index("prefect-worker.service <<UNIT") :]
    for line in (
        "Environment=LAKE_URI=${LAKE_URI}",
        "Environment=PREFECT_API_URL=http://127.0.0.1:${UI_PORT}/api",
        "EnvironmentFile=${CONF_DIR}/prefect-auth.env",
        "ExecStart=${REPO_DIR}/docker/bin/worker.sh",  # the compose worker's command
    ):
        assert line in worker
    server = script[script.index("prefect-server.service <<UNIT") : script.index(worker)]
    assert "ExecStart=${REPO_DIR}/docker/bin/prefect-server.sh" in server  # compose's command
    assert "Environment=PREFECT_SERVER_API_HOST=127.0.0.1" in server
    assert "EnvironmentFile=${CONF_DIR}/prefect-auth.env" in server
    assert "prefect config set" not in script
    assert 'WORK_POOL="lake-process"' in script


def test_user_data_holds_no_secret_only_the_parameter_name(stacks):
    script = user_data(stacks["dev"])
    assert 'AUTH_PARAMETER="/datalake/dev/prefect-api-auth"' in script
    assert "PREFECT_SERVER_API_AUTH_STRING=%s" in script  # written from SSM at boot
    assert not re.search(r"AUTH_STRING=[^%\s]", script)
    assert "--type SecureString" in script


def test_user_data_fits_the_ec2_limit(stacks):
    assert len(user_data(stacks["prod"]).encode()) < 16 * 1024


def test_work_pool_matches_prefect_yaml():
    declared = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    pools = {d["work_pool"]["name"] for d in declared["deployments"]}
    assert pools == {WORK_POOL}


@pytest.mark.parametrize("name", PLATFORM)
def test_a_dashboard_shows_the_flows_metrics_and_an_alarm_fires_on_a_failed_run(stacks, name):
    import json

    dashboard = only(stacks[name], "aws_cloudwatch_dashboard")
    assert dashboard["dashboard_name"] == f"datalake-{name}-flows"
    body = json.dumps(json.loads(dashboard["dashboard_body"]))
    for metric in ("FailedRuns", "RowsProcessed", "DurationSeconds"):
        assert metric in body
    alarm = only(stacks[name], "aws_cloudwatch_metric_alarm")
    assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == (
        "DataLake",
        "FailedRuns",
        "Sum",
    )
    assert alarm["threshold"] == 1
    assert alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["treat_missing_data"] == "notBreaching"
    assert 'METRIC_NAMESPACE="DataLake"' in user_data(stacks[name])  # the worker publishes there
    host = stacks[name]["data"]["aws_iam_policy_document"]["host_policy"]["statement"]
    (metrics,) = [s for s in host if s["sid"] == "PutFlowMetrics"]
    assert metrics["condition"] == [
        {"test": "StringEquals", "variable": "cloudwatch:namespace", "values": ["DataLake"]}
    ]


# --- host lifetime and durable state ----------------------------------------------------------


@pytest.mark.parametrize("name", PLATFORM)
def test_no_change_to_the_ami_or_the_user_data_replaces_the_host(stacks, name):
    host = only(stacks[name], "aws_instance")
    assert host["user_data_replace_on_change"] is False
    assert set(host["lifecycle"]["ignore_changes"]) == {"ami", "user_data"}


@pytest.mark.parametrize("name", PLATFORM)
def test_prefect_state_lives_on_its_own_encrypted_volume_with_daily_snapshots(stacks, name):
    stack = stacks[name]
    host = only(stack, "aws_instance")
    assert host["root_block_device"]["delete_on_termination"] is True  # nothing lives there
    volume = only(stack, "aws_ebs_volume")
    assert volume["encrypted"] is True
    assert volume["kms_key_id"] == "${aws_kms_key.lake_key.arn}"
    assert volume["availability_zone"] == "${var.region}a"
    assert volume["lifecycle"]["ignore_changes"] == ["availability_zone"]
    assert host["availability_zone"] == "${aws_ebs_volume.state_volume.availability_zone}"
    attachment = only(stack, "aws_volume_attachment")
    assert attachment["volume_id"] == "${aws_ebs_volume.state_volume.id}"
    assert attachment["instance_id"] == "${aws_instance.host.id}"
    assert attachment["stop_instance_before_detaching"] is True

    policy = only(stack, "aws_dlm_lifecycle_policy")
    assert policy["state"] == "ENABLED"
    assert policy["execution_role_arn"] == "${aws_iam_role.snapshot_role.arn}"
    details = policy["policy_details"]
    assert details["resource_types"] == ["VOLUME"]
    assert details["target_tags"] == {"Snapshots": f"datalake-{name}-prefect-state"}
    assert volume["tags"]["Snapshots"] == f"datalake-{name}-prefect-state"
    (schedule,) = details["schedule"]
    assert schedule["create_rule"] == {"interval": 24, "interval_unit": "HOURS", "times": ["03:00"]}
    assert schedule["retain_rule"] == {"count": 14}


def test_the_server_uses_postgresql_on_the_state_volume_not_sqlite(stacks):
    script = as_shell(user_data(stacks["prod"]))
    assert 'STATE_VOLUME_ID="tf-value"' in script
    assert "PGDATA_MOUNT=/var/lib/pgsql" in script
    server = script[
        script.index("prefect-server.service <<UNIT") : script.index(
            "prefect-worker.service <<UNIT"
        )
    ]
    assert "Environment=PREFECT_API_DATABASE_CONNECTION_URL=${DATABASE_URL}" in server
    assert "Requires=postgresql.service" in server
    assert 'DATABASE_URL="postgresql+asyncpg://prefect@/prefect?host=/run/postgresql"' in script
    assert "sqlite" not in script.lower()
    assert 'blkid "$device" >/dev/null || mkfs.xfs' in script  # never formats a used volume


def test_first_boot_retries_transient_errors_and_creates_the_secret_only_when_missing(stacks):
    script = as_shell(user_data(stacks["dev"]))
    lookup = script[script.index("read_auth() {") :]
    assert "grep -q ParameterNotFound" in lookup
    assert lookup.index("grep -q ParameterNotFound") < lookup.index("aws ssm put-parameter")
    assert "retry dnf install" in script


def test_a_new_host_installs_the_current_release_from_the_artifacts_bucket(stacks):
    script = as_shell(user_data(stacks["dev"]))
    assert 'RELEASES_URI="s3://tf-value/releases"' in script
    assert '"${RELEASES_URI}/current"' in script
    assert "git clone" not in script
    assert "github.com" not in script


@pytest.mark.parametrize("name", PLATFORM)
def test_release_artifacts_bucket_is_versioned_encrypted_private_and_an_output(stacks, name):
    stack = stacks[name]
    bucket = resources(stack, "aws_s3_bucket")["artifacts"]
    assert bucket["bucket"].startswith(f"datalake-{name}-artifacts-")
    (rule,) = resources(stack, "aws_s3_bucket_server_side_encryption_configuration")[
        "artifacts_encryption"
    ]["rule"]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"
    assert stack["output"]["artifact_bucket"]["value"] == "${aws_s3_bucket.artifacts.bucket}"


def test_the_host_upgrade_is_an_explicit_make_target_that_replaces_only_the_instance():
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("host-upgrade: synth") :].split("\n\n")[0]
    assert "terraform apply -input=false -replace=aws_instance.host" in recipe
    assert "cdktf.out/stacks/$(STACK)" in recipe
