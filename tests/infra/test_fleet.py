"""The worker fleet in the synthesized platform stacks (terraform/stacks/fleet.py)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.infra.test_terraform import (
    PLATFORM,
    REPO_ROOT,
    SHELLCHECK,
    as_shell,
    resources,
    user_data,
)

POOLS = {"default": "lake-process", "heavy": "lake-process-heavy"}


def by_name(stack: dict[str, Any], kind: str, fragment: str) -> dict[str, Any]:
    (config,) = [c for key, c in resources(stack, kind).items() if fragment in key]
    return config


def worker_script(stack: dict[str, Any], pool: str) -> str:
    """The pool's rendered user data (a local, which the launch template base64-encodes)."""
    (key,) = [key for key in stack["locals"] if key.startswith(f"fleet_{pool}_user_data")]
    return str(stack["locals"][key])


@pytest.mark.parametrize("name", PLATFORM)
@pytest.mark.parametrize("pool", POOLS)
def test_each_pool_has_a_group_whose_bounds_are_variables_defaulting_to_no_extra_host(
    stacks, name, pool
):
    stack = stacks[name]
    group = by_name(stack, "aws_autoscaling_group", f"fleet_{pool}_group")
    assert group["name"] == f"datalake-{name}-workers-{pool}"
    for bound, key in (("min", "min_size"), ("max", "max_size"), ("desired", "desired_capacity")):
        assert group[key] == f"${{var.fleet_{pool}_{bound}}}"
        assert stack["variable"][f"fleet_{pool}_{bound}"]["default"] == 0
    assert {"key": "Pool", "value": POOLS[pool], "propagate_at_launch": True} in group["tag"]


@pytest.mark.parametrize("pool", POOLS)
def test_groups_roll_one_host_at_a_time_each_healthy_before_the_next(stacks, pool):
    group = by_name(stacks["prod"], "aws_autoscaling_group", f"fleet_{pool}_group")
    refresh = group["instance_refresh"]
    assert refresh["strategy"] == "Rolling"
    assert refresh["preferences"]["min_healthy_percentage"] == 100  # none out before its successor
    assert refresh["preferences"]["max_healthy_percentage"] <= 110  # one extra host at a time
    assert group["launch_template"]["version"].endswith(".latest_version}")  # a change rolls


@pytest.mark.parametrize("pool", POOLS)
def test_launch_template_is_the_hosts_hardened_image_role_and_encrypted_disk(stacks, pool):
    template = by_name(stacks["dev"], "aws_launch_template", f"fleet_{pool}_template")
    assert template["image_id"] == "${data.aws_ssm_parameter.al2023_ami.value}"
    assert template["iam_instance_profile"] == {
        "name": "${aws_iam_instance_profile.host_profile.name}"
    }
    assert template["metadata_options"]["http_tokens"] == "required"
    (disk,) = template["block_device_mappings"]
    assert disk["ebs"]["encrypted"] == "true"
    assert "key_name" not in template
    assert template["user_data"].startswith(f"${{base64encode(local.fleet_{pool}_user_data")


def test_workers_have_no_inbound_and_reach_the_server_only_on_its_tls_port(stacks):
    group = by_name(stacks["dev"], "aws_security_group", "fleet_workers_sg")
    assert not group.get("ingress")
    ports = {
        (rule["from_port"], tuple(rule.get("security_groups") or ())) for rule in group["egress"]
    }
    assert ports == {(443, ()), (4443, ("${aws_security_group.host_sg.id}",))}


@pytest.mark.parametrize("pool", POOLS)
def test_worker_user_data_serves_its_pool_over_tls_with_the_trusted_server_certificate(
    stacks, pool
):
    script = worker_script(stacks["prod"], pool)
    shell = as_shell(script)
    assert f'WORK_POOL="{POOLS[pool]}"' in shell
    assert 'API_URL="https://tf-value:4443/api"' in shell
    assert 'CA_PARAMETER="/datalake/prod/prefect-api-ca"' in shell
    assert "Environment=SSL_CERT_FILE=${CONF_DIR}/prefect-api-ca.pem" in shell
    assert "ExecStart=${REPO_DIR}/docker/bin/worker.sh" in shell
    assert "prefect-server.service" not in shell  # workers only
    assert len(script.encode()) < 16 * 1024
    result = subprocess.run(
        [str(SHELLCHECK), "--shell=bash", "-"], input=shell, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("pool", POOLS)
def test_worker_hosts_install_the_current_release_like_the_server_host(stacks, pool):
    shell = as_shell(worker_script(stacks["dev"], pool))
    assert 'RELEASES_URI="s3://tf-value/releases"' in shell
    current = shell.index('retry aws s3 cp --only-show-errors "${RELEASES_URI}/current" -')
    archive = shell.index('"${RELEASES_URI}/${commit}.tar.gz"')
    assert current < archive < shell.index('-c "$release/requirements.lock" "$release"')
    assert 'ln -sfn "$release" "$REPO_DIR"' in shell
    assert "retry() {" in shell
    assert "git clone" not in shell
    assert "github.com" not in shell
    assert "REPOSITORY" not in shell
    assert "BRANCH" not in shell


@pytest.mark.parametrize("name", PLATFORM)
def test_the_server_host_terminates_tls_on_4443_and_publishes_only_its_certificate(stacks, name):
    shell = as_shell(user_data(stacks[name]))
    assert f'CA_PARAMETER="/datalake/{name}/prefect-api-ca"' in shell
    assert 'API_TLS_PORT="4443"' in shell
    assert "retry dnf install -y --setopt=install_weak_deps=False" in shell
    assert " nginx\n" in shell
    new_key = shell[shell.index('if [ ! -f "$TLS_DIR/key.pem" ]') :]
    assert '-addext "subjectAltName=DNS:${private_dns}"' in new_key
    assert "meta-data/local-hostname" in new_key
    publish = new_key[new_key.index("aws ssm put-parameter") : new_key.index("\nfi\n")]
    assert '--name "$CA_PARAMETER" --type String' in publish
    assert 'file://${TLS_DIR}/cert.pem"' in publish
    assert "key.pem" not in publish  # the key never leaves the host
    assert "listen ${API_TLS_PORT} ssl;" in shell
    assert "proxy_pass http://127.0.0.1:${UI_PORT};" in shell
    assert "proxy_set_header Upgrade \\$http_upgrade;" in shell  # events/logs websockets
    assert "Environment=PREFECT_SERVER_API_HOST=127.0.0.1" in shell  # plain HTTP stays local
    assert "systemctl enable --now prefect-tls.service" in shell
    assert "ExecStart=/usr/sbin/nginx -c ${CONF_DIR}/prefect-tls.conf" in shell


def test_the_heavy_pool_is_the_one_prefect_yaml_offers_per_deployment():
    text = (REPO_ROOT / "prefect.yaml").read_text()
    assert "lake-process-heavy" in text
    pools = yaml.safe_load(text)["definitions"]["work_pools"]
    assert {"name": "lake-process-heavy"} in [{"name": p["name"]} for p in pools.values()]
