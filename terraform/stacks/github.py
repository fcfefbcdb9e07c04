"""One-time bootstrap: GitHub's OIDC provider and the role the deploy workflow assumes."""

from __future__ import annotations

from collections.abc import Sequence

from cdktn import S3Backend, TerraformOutput, TerraformStack
from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.data_aws_partition import DataAwsPartition
from cdktn_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from stacks import variables
from stacks.config import PROJECT, Environment, SynthInputs
from stacks.policies import Condition, Statement, policy_document

GITHUB_OIDC = "token.actions.githubusercontent.com"
DEPLOY_ROLE = f"{PROJECT}-github-deploy"

# Actions that AWS does not scope to a resource: Resource must be "*" (tests/infra documents them).
UNSCOPED_ACTIONS = (
    "ec2:Describe*",
    "kms:CreateKey",
    "kms:ListAliases",
    "ssm:DescribeInstanceInformation",
    "ssm:DescribeParameters",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    "ssm:ListCommands",
)


def deploy_statements(
    environments: Sequence[Environment], state_bucket: str, account: str, partition: str
) -> list[Statement]:
    """What the deploy workflow may do: state, and only resources named for an environment."""
    arn = f"arn:{partition}"
    prefixes = [env.prefix for env in environments]
    tagged = [Condition("StringEquals", "aws:ResourceTag/Project", [PROJECT])]
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
            ],
            resources=[f"{arn}:s3:::{prefix}-*" for prefix in prefixes],
        ),
        Statement(
            sid="PlatformKeys",
            actions=[
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
                "kms:PutKeyPolicy",
                "kms:EnableKeyRotation",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:ScheduleKeyDeletion",
                "kms:CreateAlias",
                "kms:DeleteAlias",
                "kms:UpdateAlias",
            ],
            resources=[f"{arn}:kms:*:{account}:key/*"],
            conditions=tagged,
        ),
        Statement(
            sid="TagNewPlatformKeys",
            actions=["kms:TagResource"],
            resources=[f"{arn}:kms:*:{account}:key/*"],
            conditions=[Condition("StringEquals", "aws:RequestTag/Project", [PROJECT])],
        ),
        Statement(
            sid="PlatformAliases",
            actions=["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
            resources=[f"{arn}:kms:*:{account}:alias/{prefix}-*" for prefix in prefixes],
        ),
        Statement(
            sid="PlatformRoles",
            actions=[
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
                "iam:DeleteRolePolicy",
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
            resources=[
                resource
                for prefix in prefixes
                for resource in (
                    f"{arn}:iam::{account}:role/{prefix}-*",
                    f"{arn}:iam::{account}:instance-profile/{prefix}-*",
                )
            ],
        ),
        Statement(
            sid="AttachOnlySsmCore",
            actions=["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            resources=[f"{arn}:iam::{account}:role/{prefix}-*" for prefix in prefixes],
            conditions=[
                Condition(
                    "ArnEquals",
                    "iam:PolicyARN",
                    [f"{arn}:iam::aws:policy/AmazonSSMManagedInstanceCore"],
                )
            ],
        ),
        Statement(
            sid="PassHostRoleToEc2",
            actions=["iam:PassRole"],
            resources=[f"{arn}:iam::{account}:role/{prefix}-host" for prefix in prefixes],
            conditions=[Condition("StringEquals", "iam:PassedToService", ["ec2.amazonaws.com"])],
        ),
        Statement(
            sid="LaunchHost",
            actions=[
                "ec2:RunInstances",
                "ec2:CreateSecurityGroup",
                "ec2:CreateTags",
            ],
            resources=[f"{arn}:ec2:*:{account}:*", f"{arn}:ec2:*::image/*"],
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
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteTags",
            ],
            resources=[f"{arn}:ec2:*:{account}:*"],
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
            resources=[f"{arn}:ssm:*::parameter/aws/service/ami-amazon-linux-latest/*"],
        ),
        Statement(
            sid="RunDeployScriptOnHost",
            actions=["ssm:SendCommand"],
            resources=[f"{arn}:ec2:*:{account}:instance/*"],
            conditions=tagged,
        ),
        Statement(
            sid="RunShellScriptDocument",
            actions=["ssm:SendCommand"],
            resources=[f"{arn}:ssm:*::document/AWS-RunShellScript"],
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
