"""The worker fleet of one environment: Auto Scaling groups of worker hosts on the server's pools.

Each pool's group runs hosts from one launch template: the server host's AMI, instance profile
(the same least-privilege role) and project install, with a worker in place of the server.
Bounds are stack variables whose defaults keep today's cost (no extra host). The server's API is
reachable from the fleet's security group only, on a TLS port: the server host terminates TLS
with a certificate it publishes to SSM, which the workers trust. A changed launch template rolls
the group one host at a time, each healthy before the next (instance refresh); a deploy of a new
commit starts the same refresh, since every new host installs the current release at boot.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn import Fn, TerraformLocal, TerraformOutput, TerraformStack, TerraformVariable, Token
from cdktn_provider_aws.autoscaling_group import (
    AutoscalingGroup,
    AutoscalingGroupInstanceRefresh,
    AutoscalingGroupInstanceRefreshPreferences,
    AutoscalingGroupLaunchTemplate,
    AutoscalingGroupTag,
)
from cdktn_provider_aws.data_aws_subnets import DataAwsSubnets, DataAwsSubnetsFilter
from cdktn_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateIamInstanceProfile,
    LaunchTemplateMetadataOptions,
    LaunchTemplateMonitoring,
    LaunchTemplateTagSpecifications,
)
from cdktn_provider_aws.security_group import SecurityGroup, SecurityGroupEgress
from cdktn_provider_aws.security_group_rule import SecurityGroupRule
from constructs import Construct

from stacks.config import Environment
from stacks.user_data import render_user_data

API_TLS_PORT = 4443
"""The server host's TLS port for the Prefect API; the plain port stays on 127.0.0.1."""
CA_PARAMETER = "/{project}/{environment}/prefect-api-ca"
"""SSM parameter holding the server's TLS certificate (public), which the workers trust."""
WORKER_USER_DATA = "worker-user-data.sh"
ROLLING_WARMUP_SECONDS = 300
"""A new host counts as healthy this long after launch (install + worker start)."""


@dataclass(frozen=True)
class Pool:
    """A work pool the fleet serves, with its hosts' size and how many runs each takes."""

    name: str
    work_pool: str
    instance_type: str
    runs_per_host: int


def pools(env: Environment, work_pool: str) -> tuple[Pool, ...]:
    """The default pool (the one every deployment targets) and the heavy pool, chosen per
    deployment in prefect.yaml for runs that need a larger host to themselves."""
    return (
        Pool("default", work_pool, env.instance_type, runs_per_host=2),
        Pool("heavy", f"{work_pool}-heavy", "r6i.xlarge", runs_per_host=1),
    )


@dataclass(frozen=True)
class Host:
    """What the fleet shares with the server host."""

    ami: str
    vpc_id: str
    security_group_id: str
    private_dns: str
    instance_profile: str
    user_data_values: dict[str, str]


class WorkerFleet(Construct):
    """Per pool: a launch template and an Auto Scaling group sized by stack variables."""

    def __init__(self, scope: Construct, env: Environment, host: Host, template: str) -> None:
        super().__init__(scope, "fleet")
        group = SecurityGroup(
            self,
            "workers_sg",
            name=f"{env.prefix}-workers",
            description="Fleet workers: no inbound; HTTPS out and the server's TLS API port.",
            vpc_id=host.vpc_id,
            egress=[
                SecurityGroupEgress(
                    description="HTTPS to SSM, S3, PyPI and the OS package mirrors",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=["0.0.0.0/0"],
                ),
                SecurityGroupEgress(
                    description="The Prefect API on the server host, over TLS",
                    protocol="tcp",
                    from_port=API_TLS_PORT,
                    to_port=API_TLS_PORT,
                    security_groups=[host.security_group_id],
                ),
            ],
        )
        SecurityGroupRule(
            self,
            "server_api_from_workers",
            type="ingress",
            description="The Prefect API over TLS, from the fleet's workers only",
            security_group_id=host.security_group_id,
            source_security_group_id=group.id,
            protocol="tcp",
            from_port=API_TLS_PORT,
            to_port=API_TLS_PORT,
        )
        subnets = DataAwsSubnets(
            self,
            "subnets",
            filter=[DataAwsSubnetsFilter(name="vpc-id", values=[host.vpc_id])],
        )
        self.groups = [
            self._pool(env, pool, host, template, group.id, subnets.ids)
            for pool in pools(env, host.user_data_values["WORK_POOL"])
        ]

    def _pool(
        self,
        env: Environment,
        pool: Pool,
        host: Host,
        template: str,
        group_id: str,
        subnet_ids: list[str],
    ) -> AutoscalingGroup:
        def bound(name: str, what: str) -> float:
            return TerraformVariable(
                stack,
                f"fleet_{pool.name}_{name}",
                type="number",
                default=0,
                description=f"{what} of the {pool.work_pool} fleet (0 = the server host only).",
            ).number_value

        stack = TerraformStack.of(self)  # variables at the stack's top: `-var fleet_default_max=4`
        instance_type = TerraformVariable(
            stack,
            f"fleet_{pool.name}_instance_type",
            type="string",
            default=pool.instance_type,
            description=f"EC2 instance type of the {pool.work_pool} fleet's hosts.",
        ).string_value
        user_data = render_user_data(
            template,
            {
                **host.user_data_values,
                "WORK_POOL": pool.work_pool,
                "WORKER_LIMIT": str(pool.runs_per_host),
                "API_URL": f"https://{host.private_dns}:{API_TLS_PORT}/api",
            },
        )
        name = f"{env.prefix}-workers-{pool.name}"
        launch = LaunchTemplate(
            self,
            f"{pool.name}_template",
            name=name,
            image_id=host.ami,
            instance_type=instance_type,
            iam_instance_profile=LaunchTemplateIamInstanceProfile(name=host.instance_profile),
            vpc_security_group_ids=[group_id],
            ebs_optimized="true",
            monitoring=LaunchTemplateMonitoring(enabled=True),
            metadata_options=LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                LaunchTemplateBlockDeviceMappings(
                    device_name="/dev/xvda",
                    ebs=LaunchTemplateBlockDeviceMappingsEbs(
                        encrypted="true",
                        volume_type="gp3",
                        volume_size=30,
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                LaunchTemplateTagSpecifications(resource_type="instance", tags={"Name": name})
            ],
            # A local, so Terraform (not Python) fills the script's references before encoding.
            user_data=Fn.base64encode(
                TerraformLocal(self, f"{pool.name}_user_data", user_data).as_string
            ),
        )
        fleet = AutoscalingGroup(
            self,
            f"{pool.name}_group",
            name=name,
            min_size=bound("min", "Fewest hosts"),
            max_size=bound("max", "Most hosts"),
            desired_capacity=bound("desired", "Hosts wanted now"),
            vpc_zone_identifier=subnet_ids,
            launch_template=AutoscalingGroupLaunchTemplate(
                id=launch.id, version=Token.as_string(launch.latest_version)
            ),
            health_check_type="EC2",
            health_check_grace_period=ROLLING_WARMUP_SECONDS,
            instance_refresh=AutoscalingGroupInstanceRefresh(
                strategy="Rolling",
                # 100% stays in service and at most one host is added: one at a time.
                preferences=AutoscalingGroupInstanceRefreshPreferences(
                    min_healthy_percentage=100,
                    max_healthy_percentage=110,
                    instance_warmup=str(ROLLING_WARMUP_SECONDS),
                ),
            ),
            tag=[AutoscalingGroupTag(key="Pool", value=pool.work_pool, propagate_at_launch=True)],
        )
        TerraformOutput(stack, f"fleet_{pool.name}_group_name", value=fleet.name)
        return fleet
