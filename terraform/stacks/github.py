"""One-time bootstrap: GitHub's OIDC provider and the role the deploy workflow assumes."""

from __future__ import annotations

from collections.abc import Sequence

from cdktn import S3Backend, TerraformOutput, TerraformStack
from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.data_aws_partition import DataAwsPartition
from cdktn_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktn_provider_aws.iam_policy import IamPolicy
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from stacks import variables
from stacks.config import (
    BOUNDARY_POLICY,
    DEPLOY_ROLE,
    METRIC_NAMESPACE,
    PROJECT,
    Environment,
    SynthInputs,
)
from stacks.policies import Condition, Statement, policy_document

GITHUB_OIDC = "token.actions.githubusercontent.com"
SERVICE_POLICIES = (
    "AmazonSSMManagedInstanceCore",
    "service-role/AWSDataLifecycleManagerServiceRole",
)
"""The AWS managed policies a platform role may have attached (host: SSM; snapshots: DLM)."""
CREATED_WITH_TAGS = ("RunInstances", "CreateSecurityGroup", "CreateVolume", "CreateLaunchTemplate")
"""EC2 calls whose new resources the deploy role may tag (ec2:CreateAction); nothing else."""
SSM_AGENT_DOCUMENT_ACTIONS = (
    "ssm:DescribeDocument",
    "ssm:GetDocument",
    "ssm:UpdateAssociationStatus",
    "ssm:UpdateInstanceAssociationStatus",
)
"""The SSM agent's calls (AmazonSSMManagedInstanceCore) that AWS scopes to documents/instances."""
SSM_AGENT_ACTIONS = (
    "ssm:DescribeAssociation",
    "ssm:GetDeployablePatchSnapshotForInstance",
    "ssm:GetManifest",
    "ssm:ListAssociations",
    "ssm:ListInstanceAssociations",
    "ssm:PutComplianceItems",
    "ssm:PutConfigurePackageResult",
    "ssm:PutInventory",
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)
"""The rest of what AmazonSSMManagedInstanceCore lets the agent do: AWS scopes none of it."""

# Actions that AWS does not scope to a resource: Resource must be "*" (tests/infra documents them).
UNSCOPED_ACTIONS = (
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeIamInstanceProfileAssociations",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceCreditSpecifications",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVolumes",
    "ec2:DescribeVolumesModifications",
    "ec2:DescribeVpcs",
    "kms:CreateKey",
    "kms:ListAliases",
    "dlm:GetLifecyclePolicies",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeInstanceRefreshes",
    "autoscaling:DescribeScalingActivities",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ssm:DescribeInstanceInformation",
    "ssm:DescribeParameters",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    "ssm:ListCommands",
)


def boundary_arn(account: str, partition: str) -> str:
    return f"arn:{partition}:iam::{account}:policy/{BOUNDARY_POLICY}"


def boundary_statements(
    environments: Sequence[Environment], account: str, partition: str
) -> list[Statement]:
    """The most any platform role may ever do, whatever policy the deploy role writes into it."""
    arn = f"arn:{partition}"
    prefixes = [env.prefix for env in environments]
    return [
        Statement(
            sid="PlatformBucketsOnly",
            actions=["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"],
            resources=[f"{arn}:s3:::{prefix}-*" for prefix in prefixes],
        ),
        Statement(
            sid="PlatformObjectsOnly",
            actions=[
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
            ],
            resources=[f"{arn}:s3:::{prefix}-*/*" for prefix in prefixes],
        ),
        Statement(
            sid="UseKeysOfThisAccount",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            resources=[f"{arn}:kms:*:{account}:key/*"],
        ),
        Statement(
            sid="PlatformParameters",
            actions=["ssm:GetParameter", "ssm:PutParameter"],
            resources=[f"{arn}:ssm:*:{account}:parameter/{PROJECT}/*"],
        ),
        Statement(
            sid="FlowMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions=[Condition("StringEquals", "cloudwatch:namespace", [METRIC_NAMESPACE])],
        ),
        Statement(sid="SsmAgent", actions=list(SSM_AGENT_ACTIONS), resources=["*"]),
        Statement(
            sid="SsmAgentDocuments",
            actions=list(SSM_AGENT_DOCUMENT_ACTIONS),
            resources=[
                f"{arn}:ssm:*::document/*",
                f"{arn}:ssm:*:{account}:document/*",
                f"{arn}:ssm:*:{account}:association/*",
                f"{arn}:ec2:*:{account}:instance/*",
            ],
        ),
        Statement(
            sid="SnapshotVolumes",
            actions=[
                "ec2:CreateSnapshot",
                "ec2:CreateSnapshots",
                "ec2:DeleteSnapshot",
                "ec2:DescribeSnapshotAttribute",
            ],
            resources=[
                f"{arn}:ec2:*:{account}:volume/*",
                f"{arn}:ec2:*:{account}:instance/*",
                f"{arn}:ec2:*::snapshot/*",
            ],
        ),
        Statement(
            sid="TagNewSnapshots",
            actions=["ec2:CreateTags"],
            resources=[f"{arn}:ec2:*::snapshot/*"],
            conditions=[
                Condition("StringEquals", "ec2:CreateAction", ["CreateSnapshot", "CreateSnapshots"])
            ],
        ),
        Statement(
            sid="DescribeForSnapshots",
            actions=[
                "ec2:DescribeInstances",
                "ec2:DescribeVolumes",
                "ec2:DescribeSnapshots",
            ],
            resources=["*"],
        ),
    ]


def deploy_statements(
    environments: Sequence[Environment], state_bucket: str, account: str, partition: str
) -> list[Statement]:
    """What the deploy workflow may do: state, and only resources named for an environment."""
    arn = f"arn:{partition}"
    prefixes = [env.prefix for env in environments]
    tagged = [Condition("StringEquals", "aws:ResourceTag/Project", [PROJECT])]
    buckets = [f"{arn}:s3:::{prefix}-*" for prefix in prefixes]
    roles = [
        resource
        for prefix in prefixes
        for resource in (
            f"{arn}:iam::{account}:role/{prefix}-*",
            f"{arn}:iam::{account}:instance-profile/{prefix}-*",
        )
    ]
    run_shell_script = f"{arn}:ssm:*:*:document/AWS-RunShellScript"
    bounded = Condition("ArnEquals", "iam:PermissionsBoundary", [boundary_arn(account, partition)])
    return [
        Statement(
            sid="TerraformStateList",
            actions=["s3:ListBucket"],
            resources=[f"{arn}:s3:::{state_bucket}"],
        ),
        Statement(
            sid="TerraformStateObjects",
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            resources=[f"{arn}:s3:::{state_bucket}/{PROJECT}/*"],
        ),
        Statement(
            sid="ActionsWithoutResourceScope", actions=list(UNSCOPED_ACTIONS), resources=["*"]
        ),
        Statement(
            sid="PlatformBuckets",
            actions=[
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:ListBucket",
                "s3:ListBucketVersions",
                "s3:GetBucket*",
                "s3:PutBucket*",
                "s3:DeleteBucketPolicy",
                "s3:GetEncryptionConfiguration",
                "s3:PutEncryptionConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:PutLifecycleConfiguration",
                "s3:GetAccelerateConfiguration",
                "s3:GetReplicationConfiguration",
                "s3:GetAnalyticsConfiguration",
                "s3:GetIntelligentTieringConfiguration",
                "s3:GetInventoryConfiguration",
                "s3:GetMetricsConfiguration",
                # The AWS provider reads and writes bucket tags through S3 Control too.
                "s3:ListTagsForResource",
                "s3:TagResource",
                "s3:UntagResource",
            ],
            resources=buckets,
        ),
        # Uploads releases. The role that writes these buckets' policies could grant itself this
        # anyway; granting it plainly leaves no hidden path (parliament checks for one).
        Statement(
            sid="PlatformObjects",
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            resources=[f"{bucket}/*" for bucket in buckets],
        ),
        Statement(
            sid="PlatformRoles",
            actions=[
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:GetRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:CreateInstanceProfile",
                "iam:GetInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:TagInstanceProfile",
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
            ],
            resources=roles,
        ),
        Statement(
            sid="ChangeRolesOnlyWithinTheBoundary",
            actions=[
                "iam:CreateRole",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:PutRolePermissionsBoundary",
            ],
            resources=[r for r in roles if ":role/" in r],
            conditions=[bounded],
        ),
        Statement(
            sid="AttachOnlyServicePolicies",
            actions=["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            resources=[r for r in roles if ":role/" in r],
            conditions=[
                Condition(
                    "ArnEquals",
                    "iam:PolicyARN",
                    [f"{arn}:iam::aws:policy/{name}" for name in SERVICE_POLICIES],
                ),
                bounded,
            ],
        ),
        Statement(
            sid="PassHostRoleToEc2",
            actions=["iam:PassRole"],
            resources=[f"{arn}:iam::{account}:role/{prefix}-host" for prefix in prefixes],
            conditions=[Condition("StringEquals", "iam:PassedToService", ["ec2.amazonaws.com"])],
        ),
        Statement(
            sid="PassSnapshotRoleToDlm",
            actions=["iam:PassRole"],
            resources=[f"{arn}:iam::{account}:role/{prefix}-snapshots" for prefix in prefixes],
            conditions=[Condition("StringEquals", "iam:PassedToService", ["dlm.amazonaws.com"])],
        ),
        Statement(
            sid="ReadEc2Attributes",
            actions=[
                "ec2:DescribeInstanceAttribute",
                "ec2:DescribeVolumeAttribute",
                "ec2:DescribeVpcAttribute",
            ],
            resources=[f"{arn}:ec2:*:{account}:*"],
        ),
        Statement(
            sid="LaunchHost",
            actions=[
                "ec2:RunInstances",
                "ec2:CreateSecurityGroup",
                "ec2:CreateVolume",
                "ec2:CreateLaunchTemplate",
            ],
            resources=[f"{arn}:ec2:*:{account}:*", f"{arn}:ec2:*::image/*"],
        ),
        Statement(
            sid="TagOnlyWhatTheSameCallCreates",
            actions=["ec2:CreateTags"],
            resources=[f"{arn}:ec2:*:{account}:*"],
            conditions=[Condition("StringEquals", "ec2:CreateAction", list(CREATED_WITH_TAGS))],
        ),
        Statement(
            sid="ManageTaggedHost",
            actions=[
                "ec2:TerminateInstances",
                "ec2:StopInstances",
                "ec2:StartInstances",
                "ec2:ModifyInstanceAttribute",
                "ec2:MonitorInstances",
                "ec2:ModifyInstanceMetadataOptions",
                "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:AttachVolume",
                "ec2:DetachVolume",
                "ec2:ModifyVolume",
                "ec2:DeleteVolume",
                "ec2:CreateLaunchTemplateVersion",
                "ec2:ModifyLaunchTemplate",
                "ec2:DeleteLaunchTemplate",
                "ec2:CreateTags",
                "ec2:DeleteTags",
            ],
            resources=[f"{arn}:ec2:*:{account}:*"],
            conditions=tagged,
        ),
        Statement(
            sid="CreateSnapshotPolicies",
            actions=["dlm:CreateLifecyclePolicy"],
            resources=["*"],
            conditions=[Condition("StringEquals", "aws:RequestTag/Project", [PROJECT])],
        ),
        Statement(
            sid="ManageTaggedSnapshotPolicies",
            actions=[
                "dlm:GetLifecyclePolicy",
                "dlm:UpdateLifecyclePolicy",
                "dlm:DeleteLifecyclePolicy",
                "dlm:ListTagsForResource",
                "dlm:TagResource",
                "dlm:UntagResource",
            ],
            resources=[f"{arn}:dlm:*:{account}:policy/*"],
            conditions=tagged,
        ),
        Statement(
            sid="PlatformDashboards",
            actions=[
                "cloudwatch:PutDashboard",
                "cloudwatch:GetDashboard",
                "cloudwatch:DeleteDashboards",
            ],
            resources=[f"{arn}:cloudwatch::{account}:dashboard/{prefix}-*" for prefix in prefixes],
        ),
        Statement(
            sid="PlatformAlarms",
            actions=[
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:ListTagsForResource",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
            ],
            resources=[f"{arn}:cloudwatch:*:{account}:alarm:{prefix}-*" for prefix in prefixes],
        ),
        Statement(
            sid="ReadAmiParameter",
            actions=["ssm:GetParameter", "ssm:GetParameters"],
            resources=[f"{arn}:ssm:*:*:parameter/aws/service/ami-amazon-linux-latest/*"],
        ),
        # SendCommand is authorized once per resource: the instance (tagged) and the document
        # (AWS's, untagged, granted by the next statement); each statement names both.
        Statement(
            sid="RunDeployScriptOnHost",
            actions=["ssm:SendCommand"],
            resources=[f"{arn}:ec2:*:{account}:instance/*", run_shell_script],
            conditions=tagged,
        ),
        Statement(
            # The fleet's groups (terraform/stacks/fleet.py); after a deploy, each replaces its
            # hosts one at a time (new release).
            sid="FleetGroups",
            actions=[
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:DeleteAutoScalingGroup",
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:DeleteTags",
                "autoscaling:StartInstanceRefresh",
            ],
            resources=[
                f"{arn}:autoscaling:*:{account}:autoScalingGroup:*:"
                f"autoScalingGroupName/{prefix}-workers-*"
                for prefix in prefixes
            ],
        ),
        Statement(
            # The one role the boundary rule does not cover: AWS defines it (the fleet's groups).
            sid="AutoScalingServiceLinkedRole",
            actions=["iam:CreateServiceLinkedRole"],
            resources=[
                f"{arn}:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/"
                "AWSServiceRoleForAutoScaling"
            ],
            conditions=[
                Condition("StringEquals", "iam:AWSServiceName", ["autoscaling.amazonaws.com"])
            ],
        ),
        Statement(
            sid="RunShellScriptDocument",
            actions=["ssm:SendCommand"],
            resources=[run_shell_script],
        ),
    ]


class GithubDeployStack(TerraformStack):
    """GitHub OIDC provider and a deploy role only `main` of one repository can assume."""

    def __init__(
        self, scope: Construct, environments: Sequence[Environment], inputs: SynthInputs
    ) -> None:
        super().__init__(scope, "github")
        S3Backend(
            self,
            bucket=inputs.state_bucket,
            key=f"{PROJECT}/github.tfstate",
            region=inputs.state_region,
            encrypt=True,
            use_lockfile=True,
        )
        region = variables.region(self, inputs)
        repository = variables.repository(self, inputs)
        branch = variables.branch(self, inputs)
        AwsProvider(
            self,
            "aws",
            region=region,
            default_tags=[AwsProviderDefaultTags(tags={"Project": PROJECT})],
        )
        account = DataAwsCallerIdentity(self, "account").account_id
        partition = DataAwsPartition(self, "partition").partition

        IamPolicy(
            self,
            "role_boundary_policy",
            name=BOUNDARY_POLICY,
            description="Permissions boundary of every role the platform stacks create.",
            policy=policy_document(
                self, "role_boundary", boundary_statements(environments, account, partition)
            ),
        )
        provider = IamOpenidConnectProvider(
            self, "github_oidc", url=f"https://{GITHUB_OIDC}", client_id_list=["sts.amazonaws.com"]
        )
        role = IamRole(
            self,
            "deploy_role",
            name=DEPLOY_ROLE,
            description="Assumed by GitHub Actions on the deploy branch to apply and deploy.",
            max_session_duration=3600,
            assume_role_policy=policy_document(
                self,
                "deploy_trust",
                [
                    Statement(
                        sid="GithubMainBranchOnly",
                        actions=["sts:AssumeRoleWithWebIdentity"],
                        principals=[("Federated", [provider.arn])],
                        conditions=[
                            Condition("StringEquals", f"{GITHUB_OIDC}:aud", ["sts.amazonaws.com"]),
                            Condition(
                                "StringEquals",
                                f"{GITHUB_OIDC}:sub",
                                [f"repo:{repository}:ref:refs/heads/{branch}"],
                            ),
                        ],
                    )
                ],
            ),
        )
        IamRolePolicy(
            self,
            "deploy_policy",
            name="apply-and-deploy",
            role=role.id,
            policy=policy_document(
                self,
                "deploy_permissions",
                deploy_statements(environments, inputs.state_bucket, account, partition),
            ),
        )
        TerraformOutput(self, "deploy_role_arn", value=role.arn)
