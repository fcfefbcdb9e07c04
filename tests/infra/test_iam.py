"""Least privilege in the synthesized IAM: no `*` action or resource beyond documented exceptions."""

from __future__ import annotations

import fnmatch
import gc
import json
import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest


def parliament_analyzer() -> Callable[[str], Any]:
    """parliament's `analyze_policy_string`; its import leaves its data files open (1.6.4)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        from parliament import analyze_policy_string

        gc.collect()
    return analyze_policy_string


analyze_policy_string = parliament_analyzer()

# (stack, policy document, statement sid) -> why Resource "*" is needed there.
RESOURCE_STAR_EXCEPTIONS = {
    ("github", "deploy_permissions", "ActionsWithoutResourceScope"): (
        "ec2:Describe*, kms:CreateKey, kms:ListAliases, ssm:DescribeParameters and the SSM "
        "command-status calls support no resource-level permissions in IAM"
    ),
    ("github", "deploy_permissions", "CreateSnapshotPolicies"): (
        "dlm:CreateLifecyclePolicy has no resource scope; a request-tag condition marks it ours"
    ),
    ("github", "role_boundary", "FlowMetrics"): "cloudwatch:PutMetricData, namespace condition",
    ("github", "role_boundary", "SsmAgent"): (
        "the SSM agent calls of AmazonSSMManagedInstanceCore that AWS scopes to no resource"
    ),
    ("github", "role_boundary", "DescribeForSnapshots"): "ec2:Describe* has no resource scope",
    **{
        (env, "host_policy", "PutFlowMetrics"): (
            "cloudwatch:PutMetricData has no resource-level permissions; a condition limits it to"
            " the project's namespace"
        )
        for env in ("dev", "prod")
    },
    **{
        (env, "lake_key_policy", sid): 'in a KMS key policy Resource "*" means the key itself'
        for env in ("dev", "prod")
        for sid in (
            "AccountAdministersAndDelegatesToIam",
            "DeployRoleAdministersThisKey",
            "DeployRoleEncryptsTheStateVolumeThroughEc2",
        )
    },
}
ACCOUNT = "123456789012"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/datalake-github-deploy"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/datalake-role-boundary"
TERRAFORM_VALUES = {
    "${data.aws_partition.partition.partition}": "aws",
    "${data.aws_caller_identity.account.account_id}": ACCOUNT,
    "${var.region}": "eu-west-1",
    "${aws_s3_bucket.lake.arn}": "arn:aws:s3:::datalake-dev-123456789012-eu-west-1",
    "${aws_s3_bucket.artifacts.arn}": "arn:aws:s3:::datalake-dev-artifacts-123456789012-eu-west-1",
    "${aws_kms_key.lake_key.arn}": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0a1b2c3d-0000-4000-8000-000000000000",
}
"""What Terraform fills in at apply time, so the linter sees the policy AWS will see."""


def identity_policy(document: dict[str, Any]) -> str:
    """A synthesized `aws_iam_policy_document` as the IAM JSON AWS receives, tokens resolved."""
    statements = []
    for statement in document["statement"]:
        conditions: dict[str, dict[str, list[str]]] = {}
        for condition in statement.get("condition", []):
            conditions.setdefault(condition["test"], {})[condition["variable"]] = condition[
                "values"
            ]
        statements.append(
            {
                "Sid": statement["sid"],
                "Effect": statement.get("effect", "Allow"),
                "Action": statement["actions"],
                "Resource": statement.get("resources", "*"),
                **({"Condition": conditions} if conditions else {}),
            }
        )
    text = json.dumps({"Version": "2012-10-17", "Statement": statements})
    for token, value in TERRAFORM_VALUES.items():
        text = text.replace(token, value)
    assert "${" not in text, f"give the linter a value for {re.findall(r'[$][{][^}]+}', text)}"
    return text


def identity_documents(stacks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every synthesized policy that IAM attaches to a role (no principals: not a resource policy)."""
    return {
        f"{stack_name}/{name}": document
        for stack_name, stack in stacks.items()
        for name, document in stack["data"]["aws_iam_policy_document"].items()
        if not any("principals" in statement for statement in document["statement"])
    }


def statements_of(stacks: dict[str, Any], stack: str, document: str) -> dict[str, dict[str, Any]]:
    found = stacks[stack]["data"]["aws_iam_policy_document"][document]["statement"]
    return {statement["sid"]: statement for statement in found}


def granting(statements: dict[str, dict[str, Any]], action: str) -> list[dict[str, Any]]:
    """The Allow statements whose actions (wildcards included) cover `action`."""
    return [
        statement
        for statement in statements.values()
        if statement.get("effect", "Allow") == "Allow"
        and any(fnmatch.fnmatchcase(action, pattern) for pattern in statement["actions"])
    ]


def conditions(statement: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {c["variable"]: (c["test"], c["values"]) for c in statement.get("condition", [])}


def wildcard_grants(stack: str, documents: dict[str, Any]) -> list[str]:
    """Every Allow statement that grants `*`/`service:*` actions, `*` principals or resources."""
    found = []
    for doc_name, document in documents.items():
        for statement in document["statement"]:
            if statement.get("effect", "Allow") != "Allow":
                continue
            where = f"{stack}/{doc_name}/{statement.get('sid', '?')}"
            found += [
                f"{where}: action {action}"
                for action in statement["actions"]
                if action == "*" or action.endswith(":*")
            ]
            found += [
                f"{where}: principal *"
                for principal in statement.get("principals", [])
                if "*" in principal["identifiers"]
            ]
            exempt = (stack, doc_name, statement.get("sid")) in RESOURCE_STAR_EXCEPTIONS
            if "*" in statement.get("resources", []) and not exempt:
                found.append(f"{where}: resource *")
    return found


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"doc": {"statement": list(statements)}}


@pytest.mark.parametrize(
    ("documents", "expected"),
    [
        (document({"sid": "A", "actions": ["s3:GetObject"], "resources": ["arn:b/*"]}), []),
        (
            document({"sid": "A", "actions": ["s3:*"], "resources": ["arn:b"]}),
            ["s/doc/A: action s3:*"],
        ),
        (document({"sid": "A", "actions": ["*"], "resources": ["arn:b"]}), ["s/doc/A: action *"]),
        (
            document({"sid": "A", "actions": ["s3:Get*"], "resources": ["*"]}),
            ["s/doc/A: resource *"],
        ),
        (
            document(
                {
                    "sid": "A",
                    "actions": ["s3:GetObject"],
                    "principals": [{"type": "AWS", "identifiers": ["*"]}],
                }
            ),
            ["s/doc/A: principal *"],
        ),
        (
            document({"sid": "D", "effect": "Deny", "actions": ["s3:*"], "resources": ["*"]}),
            [],
        ),
    ],
)
def test_wildcard_grants_finds_star_actions_principals_and_resources(documents, expected):
    assert wildcard_grants("s", documents) == expected


def test_synthesized_policies_grant_no_wildcards_beyond_the_exceptions(stacks):
    found = [
        violation
        for name, stack in stacks.items()
        for violation in wildcard_grants(name, stack["data"]["aws_iam_policy_document"])
    ]
    assert found == []


def test_every_exception_still_exists(stacks):
    for stack, doc_name, sid in RESOURCE_STAR_EXCEPTIONS:
        statements = stacks[stack]["data"]["aws_iam_policy_document"][doc_name]["statement"]
        (statement,) = [s for s in statements if s.get("sid") == sid]
        assert statement["resources"] == ["*"]


def test_every_policy_comes_from_a_scanned_document(stacks):
    for stack in stacks.values():
        for kind, attribute in (
            ("aws_iam_role", "assume_role_policy"),
            ("aws_iam_role_policy", "policy"),
            ("aws_s3_bucket_policy", "policy"),
            ("aws_kms_key", "policy"),
        ):
            for config in stack["resource"].get(kind, {}).values():
                assert config[attribute].startswith("${data.aws_iam_policy_document."), config


def test_host_role_reaches_only_the_lake_bucket_key_its_releases_and_its_secret(stacks):
    statements = stacks["prod"]["data"]["aws_iam_policy_document"]["host_policy"]["statement"]
    assert {s["sid"]: s["resources"] for s in statements} == {
        "ListLakeBucket": ["${aws_s3_bucket.lake.arn}"],
        "ReadWriteLakeObjects": ["${aws_s3_bucket.lake.arn}/lake/*"],
        "UseLakeKey": ["${aws_kms_key.lake_key.arn}"],
        "PutFlowMetrics": ["*"],
        "ReadReleases": ["${aws_s3_bucket.artifacts.arn}/releases/*"],
        "PrefectApiSecret": [
            "arn:${data.aws_partition.partition.partition}:ssm:${var.region}:"
            "${data.aws_caller_identity.account.account_id}:parameter/datalake/prod/prefect-api-auth"
        ],
        "PrefectApiCertificate": [
            "arn:${data.aws_partition.partition.partition}:ssm:${var.region}:"
            "${data.aws_caller_identity.account.account_id}:parameter/datalake/prod/prefect-api-ca"
        ],
    }
    (certificate,) = [s for s in statements if s["sid"] == "PrefectApiCertificate"]
    assert sorted(certificate["actions"]) == ["ssm:GetParameter", "ssm:PutParameter"]


def test_host_role_may_erase_object_versions_in_the_lake_bucket_only(stacks):
    statements = stacks["prod"]["data"]["aws_iam_policy_document"]["host_policy"]["statement"]
    actions = {s["sid"]: set(s["actions"]) for s in statements}
    assert "s3:ListBucketVersions" in actions["ListLakeBucket"]
    assert {"s3:GetObjectVersion", "s3:DeleteObjectVersion"} <= actions["ReadWriteLakeObjects"]
    other = set().union(
        *(a for sid, a in actions.items() if not sid.endswith(("LakeBucket", "LakeObjects")))
    )
    assert not {a for a in other if "Version" in a}


def test_deploy_role_trusts_only_the_main_branch_of_one_repository(stacks):
    (trust,) = stacks["github"]["data"]["aws_iam_policy_document"]["deploy_trust"]["statement"]
    assert trust["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert trust["principals"] == [
        {"type": "Federated", "identifiers": ["${aws_iam_openid_connect_provider.github_oidc.arn}"]}
    ]
    conditions = {c["variable"]: (c["test"], c["values"]) for c in trust["condition"]}
    assert conditions == {
        "token.actions.githubusercontent.com:aud": ("StringEquals", ["sts.amazonaws.com"]),
        "token.actions.githubusercontent.com:sub": (
            "StringEquals",
            ["repo:${var.repository}:ref:refs/heads/${var.branch}"],
        ),
    }
    provider = stacks["github"]["resource"]["aws_iam_openid_connect_provider"]["github_oidc"]
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["client_id_list"] == ["sts.amazonaws.com"]


def test_deploy_role_touches_only_resources_named_for_an_environment(stacks):
    statements = stacks["github"]["data"]["aws_iam_policy_document"]["deploy_permissions"][
        "statement"
    ]
    by_sid = {s["sid"]: s for s in statements}
    for sid in (
        "PlatformBuckets",
        "PlatformRoles",
        "ChangeRolesOnlyWithinTheBoundary",
        "AttachOnlyServicePolicies",
        "PassHostRoleToEc2",
        "PassSnapshotRoleToDlm",
        "PlatformObjects",
    ):
        for resource in by_sid[sid]["resources"]:
            assert re.search(r"[:/]datalake-(dev|prod)-", resource), resource
    assert by_sid["PassHostRoleToEc2"]["condition"] == [
        {"test": "StringEquals", "variable": "iam:PassedToService", "values": ["ec2.amazonaws.com"]}
    ]


# --- the IAM linter -------------------------------------------------------------------------


def test_identity_policy_resolves_terraform_values_and_groups_conditions():
    document = {
        "statement": [
            {
                "sid": "A",
                "actions": ["s3:GetObject"],
                "resources": ["${aws_s3_bucket.lake.arn}/*"],
                "condition": [
                    {"test": "StringEquals", "variable": "aws:ResourceTag/A", "values": ["1"]},
                    {"test": "StringEquals", "variable": "aws:ResourceTag/B", "values": ["2"]},
                ],
            }
        ]
    }
    (statement,) = json.loads(identity_policy(document))["Statement"]
    assert statement["Resource"] == ["arn:aws:s3:::datalake-dev-123456789012-eu-west-1/*"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:ResourceTag/A": ["1"], "aws:ResourceTag/B": ["2"]}
    }


def test_parliament_flags_an_unscoped_grant():
    """The linter is live: a statement it must object to gives findings."""
    risky = {"statement": [{"sid": "A", "actions": ["s3:GetObject"], "resources": ["*"]}]}
    assert analyze_policy_string(identity_policy(risky)).findings


def test_parliament_finds_nothing_in_any_role_policy_or_the_boundary(stacks):
    documents = identity_documents(stacks)
    assert {"github/deploy_permissions", "github/role_boundary", "dev/host_policy"} <= set(
        documents
    )
    findings = {
        name: [
            f"{f.issue}: {f.detail}" for f in analyze_policy_string(identity_policy(doc)).findings
        ]
        for name, doc in documents.items()
    }
    assert {name: found for name, found in findings.items() if found} == {}


# --- escalation paths of the deploy role, each closed -----------------------------------------


@pytest.fixture
def deploy(stacks) -> dict[str, dict[str, Any]]:
    return statements_of(stacks, "github", "deploy_permissions")


def test_every_role_a_platform_stack_creates_carries_the_boundary(stacks):
    for name in ("dev", "prod"):
        roles = stacks[name]["resource"]["aws_iam_role"]
        assert set(roles) == {"host_role", "snapshot_role"}
        for role in roles.values():
            assert role["permissions_boundary"] == (
                "arn:${data.aws_partition.partition.partition}:iam::"
                "${data.aws_caller_identity.account.account_id}:policy/datalake-role-boundary"
            )
    boundary = stacks["github"]["resource"]["aws_iam_policy"]["role_boundary_policy"]
    assert boundary["name"] == "datalake-role-boundary"


def test_deploy_role_creates_and_changes_roles_only_with_the_boundary(deploy):
    for action in (
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:PutRolePermissionsBoundary",
    ):
        grants = granting(deploy, action)
        assert grants, action
        for statement in grants:
            assert conditions(statement)["iam:PermissionsBoundary"][1] == [
                "arn:${data.aws_partition.partition.partition}:iam::"
                "${data.aws_caller_identity.account.account_id}:policy/datalake-role-boundary"
            ], action
    for action in (
        "iam:DeleteRolePermissionsBoundary",
        "iam:CreatePolicy",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:DeletePolicy",
    ):
        assert not granting(deploy, action), action


def test_deploy_role_attaches_only_the_ssm_and_dlm_service_policies(deploy):
    (attach,) = granting(deploy, "iam:AttachRolePolicy")
    test, arns = conditions(attach)["iam:PolicyARN"]
    assert test == "ArnEquals"
    assert [arn.rsplit("policy/", 1)[1] for arn in arns] == [
        "AmazonSSMManagedInstanceCore",
        "service-role/AWSDataLifecycleManagerServiceRole",
    ]


def test_the_boundary_grants_no_iam_no_role_assumption_and_no_remote_commands(stacks):
    boundary = statements_of(stacks, "github", "role_boundary")
    for action in (
        "iam:CreateRole",
        "iam:PassRole",
        "sts:AssumeRole",
        "ssm:SendCommand",
        "ec2:RunInstances",
        "kms:PutKeyPolicy",
        "s3:PutBucketPolicy",
    ):
        assert not granting(boundary, action), action


def test_deploy_role_tags_ec2_resources_only_in_the_call_that_creates_them(deploy):
    for statement in granting(deploy, "ec2:CreateTags"):
        found = conditions(statement)
        created = found.get("ec2:CreateAction")
        ours = found.get("aws:ResourceTag/Project")
        assert created == (
            "StringEquals",
            ["RunInstances", "CreateSecurityGroup", "CreateVolume", "CreateLaunchTemplate"],
        ) or (ours == ("StringEquals", ["datalake"])), statement["sid"]


def test_remote_commands_and_termination_need_a_tag_only_the_stack_can_set(deploy):
    for action in ("ssm:SendCommand", "ec2:TerminateInstances", "ec2:DetachVolume"):
        instance_grants = [
            s for s in granting(deploy, action) if any(":ec2:" in r for r in s["resources"])
        ]
        assert instance_grants, action
        for statement in instance_grants:
            assert conditions(statement)["aws:ResourceTag/Project"] == (
                "StringEquals",
                ["datalake"],
            )


def test_deploy_role_has_no_key_administration_and_no_key_tagging_in_iam(deploy):
    for action in (
        "kms:PutKeyPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:CreateGrant",
        "kms:Decrypt",
    ):
        assert not granting(deploy, action), action
    assert not granting(deploy, "kms:CreateAlias")  # the keys have no alias to claim them by


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_platform_keys_name_the_deploy_role_and_are_created_untagged(stacks, name):
    key_policy = statements_of(stacks, name, "lake_key_policy")
    admin = key_policy["DeployRoleAdministersThisKey"]
    assert admin["principals"] == [
        {
            "type": "AWS",
            "identifiers": [
                "arn:${data.aws_partition.partition.partition}:iam::"
                "${data.aws_caller_identity.account.account_id}:role/datalake-github-deploy"
            ],
        }
    ]
    ebs = key_policy["DeployRoleEncryptsTheStateVolumeThroughEc2"]
    assert conditions(ebs)["kms:ViaService"] == (
        "StringEquals",
        ["ec2.${var.region}.amazonaws.com"],
    )
    # Tagging a key as it is created needs kms:TagResource on every key: no tags on keys.
    provider = {p.get("alias"): p for p in stacks[name]["provider"]["aws"]}["untagged"]
    assert "default_tags" not in provider
    key = stacks[name]["resource"]["aws_kms_key"]["lake_key"]
    assert key["provider"] == "aws.untagged"
    assert "tags" not in key


def test_deploy_role_tags_only_platform_buckets_and_snapshot_policies(deploy):
    for action in (
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:ListTagsForResource",
        "s3:TagResource",
        "s3:UntagResource",
    ):
        grants = granting(deploy, action)
        assert grants, action
        for statement in grants:
            for resource in statement["resources"]:
                assert re.search(r":s3:::datalake-(dev|prod)-\*$", resource), (action, resource)
    for action in ("dlm:TagResource", "dlm:UntagResource"):
        (statement,) = granting(deploy, action)
        assert conditions(statement)["aws:ResourceTag/Project"] == ("StringEquals", ["datalake"])


def test_deploy_role_creates_and_refreshes_only_the_fleet_groups_of_the_stacks(deploy):
    roll = deploy["FleetGroups"]
    assert {
        "autoscaling:CreateAutoScalingGroup",
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:StartInstanceRefresh",
    } <= set(roll["actions"])
    assert all(
        re.fullmatch(
            r"arn:\$\{[^}]+\}:autoscaling:\*:\$\{[^}]+\}:autoScalingGroup:\*:"
            r"autoScalingGroupName/datalake-(dev|prod)-workers-\*",
            resource,
        )
        for resource in roll["resources"]
    ), roll["resources"]
    # Describe calls have no resource-level permissions in Auto Scaling: read-only, on "*".
    assert (
        "autoscaling:DescribeInstanceRefreshes"
        in (deploy["ActionsWithoutResourceScope"]["actions"])
    )


def test_deploy_role_creates_launch_templates_tagged_and_only_autoscaling_s_linked_role(deploy):
    assert "ec2:CreateLaunchTemplate" in deploy["LaunchHost"]["actions"]
    assert "ec2:DeleteLaunchTemplate" in deploy["ManageTaggedHost"]["actions"]
    assert (
        "CreateLaunchTemplate"
        in conditions(deploy["TagOnlyWhatTheSameCallCreates"])["ec2:CreateAction"][1]
    )
    (linked,) = granting(deploy, "iam:CreateServiceLinkedRole")
    assert linked["resources"] == [
        "arn:${data.aws_partition.partition.partition}:iam::"
        "${data.aws_caller_identity.account.account_id}:role/aws-service-role/"
        "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    ]
    assert conditions(linked)["iam:AWSServiceName"] == (
        "StringEquals",
        ["autoscaling.amazonaws.com"],
    )
