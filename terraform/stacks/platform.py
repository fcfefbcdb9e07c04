"""One environment of the platform: lake bucket and key, host role, and the EC2 host."""

from __future__ import annotations

import json

from cdktn import (
    S3Backend,
    TerraformOutput,
    TerraformResourceLifecycle,
    TerraformStack,
    TerraformVariable,
)
from cdktn_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktn_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.data_aws_partition import DataAwsPartition
from cdktn_provider_aws.data_aws_ssm_parameter import DataAwsSsmParameter
from cdktn_provider_aws.data_aws_vpc import DataAwsVpc
from cdktn_provider_aws.dlm_lifecycle_policy import (
    DlmLifecyclePolicy,
    DlmLifecyclePolicyPolicyDetails,
    DlmLifecyclePolicyPolicyDetailsSchedule,
    DlmLifecyclePolicyPolicyDetailsScheduleCreateRule,
    DlmLifecyclePolicyPolicyDetailsScheduleRetainRule,
)
from cdktn_provider_aws.ebs_volume import EbsVolume
from cdktn_provider_aws.iam_instance_profile import IamInstanceProfile
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktn_provider_aws.instance import Instance, InstanceMetadataOptions, InstanceRootBlockDevice
from cdktn_provider_aws.kms_key import KmsKey
from cdktn_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from cdktn_provider_aws.s3_bucket import S3Bucket
from cdktn_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktn_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktn_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktn_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktn_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktn_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktn_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from cdktn_provider_aws.security_group import SecurityGroup, SecurityGroupEgress
from cdktn_provider_aws.volume_attachment import VolumeAttachment
from constructs import Construct

from stacks import variables
from stacks.config import (
    BOUNDARY_POLICY,
    DEPLOY_ROLE,
    METRIC_NAMESPACE,
    PROJECT,
    WORK_POOL,
    Environment,
    SynthInputs,
)
from stacks.fleet import API_TLS_PORT, CA_PARAMETER, WORKER_USER_DATA, Host, WorkerFleet
from stacks.policies import Condition, Statement, policy_document
from stacks.user_data import USER_DATA_TEMPLATE, render_user_data

AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
LAKE_PREFIX = "lake"
RELEASES_PREFIX = "releases"
UI_PORT = 4200
STATE_DEVICE = "/dev/sdf"
STATE_VOLUME_GB = 20
SNAPSHOTS_KEPT = 14
"""Daily snapshots of the Prefect database volume, kept two weeks."""


class PlatformStack(TerraformStack):
    """Lake bucket (+ access-log bucket), KMS key, least-privilege host role, EC2 host."""

    def __init__(self, scope: Construct, env: Environment, inputs: SynthInputs) -> None:
        super().__init__(scope, env.name)
        S3Backend(
            self,
            bucket=inputs.state_bucket,
            key=f"{PROJECT}/{env.name}.tfstate",
            region=inputs.state_region,
            encrypt=True,
            use_lockfile=True,
        )
        region = variables.region(self, inputs)
        repository = variables.repository(self, inputs)
        branch = variables.branch(self, inputs)
        instance_type = TerraformVariable(
            self,
            "instance_type",
            type="string",
            default=env.instance_type,
            description="EC2 instance type of the Prefect host.",
        ).string_value

        AwsProvider(
            self,
            "aws",
            region=region,
            default_tags=[
                AwsProviderDefaultTags(tags={"Project": PROJECT, "Environment": env.name})
            ],
        )
        # Tagging a key while creating it needs kms:TagResource on every key of the account,
        # which would let the deploy role tag (and so claim) any key: the keys stay untagged.
        untagged = AwsProvider(self, "aws_untagged", alias="untagged", region=region)
        account = DataAwsCallerIdentity(self, "account").account_id
        partition = DataAwsPartition(self, "partition").partition

        key = self._lake_key(env, account, partition, region, untagged)
        lake = self._bucket(env, "lake", f"{env.prefix}-{account}-{region}")
        logs = self._bucket(env, "logs", f"{env.prefix}-logs-{account}-{region}")
        artifacts = self._bucket(
            env, "artifacts", f"{env.artifact_bucket_prefix}-{account}-{region}"
        )
        self._encrypt(lake, "lake", kms_key_arn=key.arn)
        self._encrypt(logs, "logs", kms_key_arn=None)
        # The deploy role uploads releases without any right on the lake key: SSE-S3.
        self._encrypt(artifacts, "artifacts", kms_key_arn=None)
        S3BucketOwnershipControls(
            self,
            "logs_ownership",
            bucket=logs.id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        S3BucketLoggingA(
            self, "lake_logging", bucket=lake.id, target_bucket=logs.id, target_prefix="s3/"
        )
        S3BucketLoggingA(
            self,
            "artifacts_logging",
            bucket=artifacts.id,
            target_bucket=logs.id,
            target_prefix="s3/artifacts/",
        )
        self._lifecycle(
            lake,
            "lake",
            env.noncurrent_version_days,
            expire_prefix=f"{LAKE_PREFIX}/landing/",
            expire_days=env.landing_expiry_days,
        )
        self._lifecycle(logs, "logs", 30, expire_prefix="", expire_days=365)
        self._lifecycle(artifacts, "artifacts", 90)
        self._bucket_policy(lake, "lake", extra=())
        self._bucket_policy(artifacts, "artifacts", extra=())
        self._bucket_policy(
            logs,
            "logs",
            extra=(
                Statement(
                    sid="S3ServerAccessLogs",
                    actions=["s3:PutObject"],
                    resources=[f"{logs.arn}/s3/*"],
                    principals=[("Service", ["logging.s3.amazonaws.com"])],
                    conditions=[
                        Condition("ArnLike", "aws:SourceArn", [lake.arn, artifacts.arn]),
                        Condition("StringEquals", "aws:SourceAccount", [account]),
                    ],
                ),
            ),
        )

        boundary = f"arn:{partition}:iam::{account}:policy/{BOUNDARY_POLICY}"
        ca_parameter = CA_PARAMETER.format(project=PROJECT, environment=env.name)
        profile = self._host_role(
            env, lake.arn, artifacts.arn, key.arn, (region, account, partition), boundary
        )
        state = self._state_volume(env, region, key.arn, partition, boundary)
        host = self._host(
            env,
            instance_type=instance_type,
            profile=profile.name,
            availability_zone=state.availability_zone,
            user_data=render_user_data(
                USER_DATA_TEMPLATE.read_text(),
                {
                    "ENVIRONMENT": env.name,
                    "REGION": region,
                    "REPOSITORY": repository,
                    "BRANCH": branch,
                    "RELEASES_URI": f"s3://{artifacts.bucket}/{RELEASES_PREFIX}",
                    "STATE_VOLUME_ID": state.id,
                    "LAKE_URI": f"s3://{lake.bucket}/{LAKE_PREFIX}",
                    "AUTH_PARAMETER": env.auth_parameter,
                    "CA_PARAMETER": ca_parameter,
                    "API_TLS_PORT": str(API_TLS_PORT),
                    "KMS_KEY_ARN": key.arn,
                    "WORK_POOL": WORK_POOL,
                    "UI_PORT": str(UI_PORT),
                    "METRIC_NAMESPACE": METRIC_NAMESPACE,
                },
            ),
        )

        VolumeAttachment(
            self,
            "state_attachment",
            device_name=STATE_DEVICE,
            volume_id=state.id,
            instance_id=host.id,
            # The host stops (PostgreSQL shuts down cleanly) before the volume moves to a new one.
            stop_instance_before_detaching=True,
        )

        WorkerFleet(
            self,
            env,
            Host(
                ami=self.ami.value,
                vpc_id=self.vpc.id,
                security_group_id=self.host_group.id,
                private_dns=host.private_dns,
                instance_profile=profile.name,
                user_data_values={
                    "REGION": region,
                    "RELEASES_URI": f"s3://{artifacts.bucket}/{RELEASES_PREFIX}",
                    "LAKE_URI": f"s3://{lake.bucket}/{LAKE_PREFIX}",
                    "AUTH_PARAMETER": env.auth_parameter,
                    "CA_PARAMETER": ca_parameter,
                    "WORK_POOL": WORK_POOL,
                    "METRIC_NAMESPACE": METRIC_NAMESPACE,
                },
            ),
            (USER_DATA_TEMPLATE.parent / WORKER_USER_DATA).read_text(),
        )
        dashboard, alarm = self._monitoring(env, region)

        TerraformOutput(self, "instance_id", value=host.id)
        TerraformOutput(self, "dashboard_name", value=dashboard.dashboard_name)
        TerraformOutput(self, "failed_runs_alarm_name", value=alarm.alarm_name)
        TerraformOutput(self, "lake_bucket", value=lake.bucket)
        TerraformOutput(self, "log_bucket", value=logs.bucket)
        TerraformOutput(self, "artifact_bucket", value=artifacts.bucket)
        TerraformOutput(self, "state_volume_id", value=state.id)
        TerraformOutput(self, "lake_uri", value=f"s3://{lake.bucket}/{LAKE_PREFIX}")
        TerraformOutput(self, "kms_key_arn", value=key.arn)
        TerraformOutput(self, "auth_parameter", value=env.auth_parameter)
        TerraformOutput(
            self,
            "ui_tunnel_command",
            value=(
                f"aws ssm start-session --region {region} --target {host.id} "
                "--document-name AWS-StartPortForwardingSession "
                f"--parameters portNumber={UI_PORT},localPortNumber={UI_PORT}"
            ),
        )

    def _monitoring(
        self, env: Environment, region: str
    ) -> tuple[CloudwatchDashboard, CloudwatchMetricAlarm]:
        """A dashboard of the flows' metrics and an alarm when any run fails."""

        def widget(title: str, metric: str, stat: str, y: int) -> dict[str, object]:
            search = (
                f"SEARCH('{{{METRIC_NAMESPACE},Flow}} MetricName=\"{metric}\"', '{stat}', 3600)"
            )
            return {
                "type": "metric",
                "x": 0,
                "y": y,
                "width": 24,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": region,
                    "metrics": [[{"expression": search, "id": "m", "label": ""}]],
                    "view": "timeSeries",
                },
            }

        dashboard = CloudwatchDashboard(
            self,
            "flows_dashboard",
            dashboard_name=f"{env.prefix}-flows",
            dashboard_body=json.dumps(
                {
                    "widgets": [
                        widget("Failed runs per flow", "FailedRuns", "Sum", 0),
                        widget("Rows processed per flow", "RowsProcessed", "Sum", 6),
                        widget("Run duration (s) per flow", "DurationSeconds", "Maximum", 12),
                    ]
                }
            ),
        )
        alarm = CloudwatchMetricAlarm(
            self,
            "failed_runs_alarm",
            alarm_name=f"{env.prefix}-failed-runs",
            alarm_description="A flow run failed or crashed (pipeline health's FailedRuns).",
            namespace=METRIC_NAMESPACE,
            metric_name="FailedRuns",
            statistic="Sum",
            period=3600,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
        )
        return dashboard, alarm

    def _lake_key(
        self,
        env: Environment,
        account: str,
        partition: str,
        region: str,
        provider: AwsProvider,
    ) -> KmsKey:
        # In a key policy "*" means this key. The account root may administer and use it, which
        # delegates the rest to IAM: only the host role's policy grants use of the key. The
        # deploy role administers this key by name here, so its own IAM policy grants no key
        # administration at all (no path to another key of the account).
        root = f"arn:{partition}:iam::{account}:root"
        deploy_role = f"arn:{partition}:iam::{account}:role/{DEPLOY_ROLE}"
        key = KmsKey(
            self,
            "lake_key",
            provider=provider,
            description=f"Encrypts the {env.name} data lake bucket and the Prefect API secret.",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy_document(
                self,
                "lake_key_policy",
                [
                    Statement(
                        sid="AccountAdministersAndDelegatesToIam",
                        actions=[
                            "kms:Create*",
                            "kms:Describe*",
                            "kms:Enable*",
                            "kms:List*",
                            "kms:Put*",
                            "kms:Update*",
                            "kms:Revoke*",
                            "kms:Disable*",
                            "kms:Get*",
                            "kms:Delete*",
                            "kms:TagResource",
                            "kms:UntagResource",
                            "kms:ScheduleKeyDeletion",
                            "kms:CancelKeyDeletion",
                            "kms:Encrypt",
                            "kms:Decrypt",
                            "kms:ReEncrypt*",
                            "kms:GenerateDataKey*",
                        ],
                        resources=["*"],
                        principals=[("AWS", [root])],
                    ),
                    Statement(
                        sid="DeployRoleAdministersThisKey",
                        actions=[
                            "kms:DescribeKey",
                            "kms:GetKeyPolicy",
                            "kms:GetKeyRotationStatus",
                            "kms:ListResourceTags",
                            "kms:PutKeyPolicy",
                            "kms:EnableKeyRotation",
                            "kms:UpdateKeyDescription",
                            "kms:ScheduleKeyDeletion",
                        ],
                        resources=["*"],
                        principals=[("AWS", [deploy_role])],
                    ),
                    Statement(
                        sid="DeployRoleEncryptsTheStateVolumeThroughEc2",
                        actions=[
                            "kms:CreateGrant",
                            "kms:Decrypt",
                            "kms:GenerateDataKeyWithoutPlaintext",
                            "kms:ReEncryptFrom",
                            "kms:ReEncryptTo",
                        ],
                        resources=["*"],
                        principals=[("AWS", [deploy_role])],
                        conditions=[
                            Condition(
                                "StringEquals", "kms:ViaService", [f"ec2.{region}.amazonaws.com"]
                            )
                        ],
                    ),
                ],
            ),
        )
        return key

    def _state_volume(
        self, env: Environment, region: str, key_arn: str, partition: str, boundary: str
    ) -> EbsVolume:
        """The Prefect database's own encrypted volume, outliving any host, snapshotted daily."""
        snapshot_tag = {"Snapshots": f"{env.prefix}-prefect-state"}
        volume = EbsVolume(
            self,
            "state_volume",
            # The region's "a" zone: every region has one; the host follows the volume there.
            availability_zone=f"{region}a",
            size=STATE_VOLUME_GB,
            type="gp3",
            encrypted=True,
            kms_key_id=key_arn,
            tags={"Name": f"{env.prefix}-prefect-state", **snapshot_tag},
            # Never recreated (empty) for a zone change: it stays where it was made.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["availability_zone"]),
        )
        role = IamRole(
            self,
            "snapshot_role",
            name=f"{env.prefix}-snapshots",
            description="Data Lifecycle Manager: snapshots of the Prefect database volume.",
            permissions_boundary=boundary,
            assume_role_policy=policy_document(
                self,
                "snapshot_trust",
                [
                    Statement(
                        sid="DlmAssumesSnapshotRole",
                        actions=["sts:AssumeRole"],
                        principals=[("Service", ["dlm.amazonaws.com"])],
                    )
                ],
            ),
        )
        IamRolePolicyAttachment(
            self,
            "snapshot_role_dlm",
            role=role.name,
            policy_arn=(
                f"arn:{partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
            ),
        )
        DlmLifecyclePolicy(
            self,
            "state_snapshots",
            description=f"{env.prefix}: daily snapshot of the Prefect database volume",
            execution_role_arn=role.arn,
            state="ENABLED",
            policy_details=DlmLifecyclePolicyPolicyDetails(
                resource_types=["VOLUME"],
                target_tags=snapshot_tag,
                schedule=[
                    DlmLifecyclePolicyPolicyDetailsSchedule(
                        name="daily",
                        create_rule=DlmLifecyclePolicyPolicyDetailsScheduleCreateRule(
                            interval=24, interval_unit="HOURS", times=["03:00"]
                        ),
                        retain_rule=DlmLifecyclePolicyPolicyDetailsScheduleRetainRule(
                            count=SNAPSHOTS_KEPT
                        ),
                        copy_tags=True,
                    )
                ],
            ),
        )
        return volume

    def _bucket(self, env: Environment, id_: str, name: str) -> S3Bucket:
        bucket = S3Bucket(self, id_, bucket=name, force_destroy=False)
        S3BucketVersioningA(
            self,
            f"{id_}_versioning",
            bucket=bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        S3BucketPublicAccessBlock(
            self,
            f"{id_}_public_access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        return bucket

    def _encrypt(self, bucket: S3Bucket, id_: str, kms_key_arn: str | None) -> None:
        # S3 server access logs can only be delivered to an SSE-S3 bucket, hence no key for logs.
        default = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
            sse_algorithm="aws:kms" if kms_key_arn else "AES256", kms_master_key_id=kms_key_arn
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            f"{id_}_encryption",
            bucket=bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=default,
                    bucket_key_enabled=kms_key_arn is not None,
                )
            ],
        )

    def _lifecycle(
        self,
        bucket: S3Bucket,
        id_: str,
        noncurrent_days: int,
        *,
        expire_prefix: str | None = None,
        expire_days: int = 0,
    ) -> None:
        abort = S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
            days_after_initiation=7
        )
        expire = (
            [
                S3BucketLifecycleConfigurationRule(
                    id="expire-landing" if expire_prefix else "expire-logs",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=expire_prefix)],
                    expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=expire_days)],
                    abort_incomplete_multipart_upload=[abort],
                )
            ]
            if expire_prefix is not None
            else []
        )
        S3BucketLifecycleConfiguration(
            self,
            f"{id_}_lifecycle",
            bucket=bucket.id,
            rule=[
                S3BucketLifecycleConfigurationRule(
                    id="expire-old-versions",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    noncurrent_version_expiration=[
                        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                            noncurrent_days=noncurrent_days
                        )
                    ],
                    abort_incomplete_multipart_upload=[abort],
                ),
                *expire,
            ],
        )

    def _bucket_policy(self, bucket: S3Bucket, id_: str, extra: tuple[Statement, ...]) -> None:
        deny_plain_http = Statement(
            sid="DenyInsecureTransport",
            effect="Deny",
            actions=["s3:*"],
            resources=[bucket.arn, f"{bucket.arn}/*"],
            principals=[("*", ["*"])],
            conditions=[Condition("Bool", "aws:SecureTransport", ["false"])],
        )
        S3BucketPolicy(
            self,
            f"{id_}_policy",
            bucket=bucket.id,
            policy=policy_document(self, f"{id_}_bucket_policy", [deny_plain_http, *extra]),
        )

    def _host_role(
        self,
        env: Environment,
        lake_arn: str,
        artifacts_arn: str,
        key_arn: str,
        where: tuple[str, str, str],
        boundary: str,
    ) -> IamInstanceProfile:
        region, account, partition = where
        role = IamRole(
            self,
            "host_role",
            name=f"{env.prefix}-host",
            permissions_boundary=boundary,
            description="The Prefect host: the lake bucket and key, its API secret, SSM core.",
            assume_role_policy=policy_document(
                self,
                "host_trust",
                [
                    Statement(
                        sid="Ec2AssumesHostRole",
                        actions=["sts:AssumeRole"],
                        principals=[("Service", ["ec2.amazonaws.com"])],
                    )
                ],
            ),
        )
        parameters = f"arn:{partition}:ssm:{region}:{account}:parameter"
        ca_parameter = CA_PARAMETER.format(project=PROJECT, environment=env.name)
        IamRolePolicy(
            self,
            "host_lake_access",
            name="lake-access",
            role=role.id,
            policy=policy_document(
                self,
                "host_policy",
                [
                    Statement(
                        sid="ListLakeBucket",
                        actions=["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"],
                        resources=[lake_arn],
                    ),
                    Statement(
                        sid="ReadWriteLakeObjects",
                        # Object versions: an erasure deletes the noncurrent copies it leaves.
                        actions=[
                            "s3:GetObject",
                            "s3:PutObject",
                            "s3:DeleteObject",
                            "s3:GetObjectVersion",
                            "s3:DeleteObjectVersion",
                        ],
                        resources=[f"{lake_arn}/{LAKE_PREFIX}/*"],
                    ),
                    Statement(
                        sid="UseLakeKey",
                        actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                        resources=[key_arn],
                    ),
                    Statement(
                        sid="PutFlowMetrics",
                        actions=["cloudwatch:PutMetricData"],
                        resources=["*"],
                        conditions=[
                            Condition("StringEquals", "cloudwatch:namespace", [METRIC_NAMESPACE])
                        ],
                    ),
                    Statement(
                        sid="ReadReleases",
                        actions=["s3:GetObject"],
                        resources=[f"{artifacts_arn}/{RELEASES_PREFIX}/*"],
                    ),
                    Statement(
                        sid="PrefectApiSecret",
                        actions=["ssm:GetParameter", "ssm:PutParameter"],
                        resources=[f"{parameters}{env.auth_parameter}"],
                    ),
                    Statement(
                        # The server host publishes its TLS certificate; fleet workers read it.
                        sid="PrefectApiCertificate",
                        actions=["ssm:GetParameter", "ssm:PutParameter"],
                        resources=[f"{parameters}{ca_parameter}"],
                    ),
                ],
            ),
        )
        IamRolePolicyAttachment(
            self,
            "host_ssm_core",
            role=role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
        )
        return IamInstanceProfile(self, "host_profile", name=f"{env.prefix}-host", role=role.name)

    def _host(
        self,
        env: Environment,
        *,
        instance_type: str,
        profile: str,
        availability_zone: str,
        user_data: str,
    ) -> Instance:
        vpc = self.vpc = DataAwsVpc(self, "default_vpc", default=True)
        group = self.host_group = SecurityGroup(
            self,
            "host_sg",
            name=f"{env.prefix}-host",
            description="Prefect host: no inbound (reached through SSM); HTTPS out only.",
            vpc_id=vpc.id,
            egress=[
                SecurityGroupEgress(
                    description="HTTPS to SSM, S3, PyPI, GitHub and the OS package mirrors",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=["0.0.0.0/0"],
                )
            ],
        )
        ami = self.ami = DataAwsSsmParameter(self, "al2023_ami", name=AMI_PARAMETER)
        return Instance(
            self,
            "host",
            ami=ami.value,
            instance_type=instance_type,
            availability_zone=availability_zone,
            iam_instance_profile=profile,
            vpc_security_group_ids=[group.id],
            associate_public_ip_address=True,
            ebs_optimized=True,
            monitoring=True,
            metadata_options=InstanceMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            root_block_device=InstanceRootBlockDevice(
                encrypted=True, volume_type="gp3", volume_size=30, delete_on_termination=True
            ),
            user_data=user_data,
            # A push never replaces the host: the AMI found at creation and the first-boot script
            # stay until `make host-upgrade` replaces it on purpose (terraform/README.md).
            user_data_replace_on_change=False,
            lifecycle=TerraformResourceLifecycle(ignore_changes=["ami", "user_data"]),
            tags={"Name": f"{env.prefix}-prefect"},
        )
