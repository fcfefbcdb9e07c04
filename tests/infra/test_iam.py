"""Least privilege in the synthesized IAM: no `*` action or resource beyond documented exceptions."""

from __future__ import annotations

import re
from typing import Any

import pytest

# (stack, policy document, statement sid) -> why Resource "*" is needed there.
RESOURCE_STAR_EXCEPTIONS = {
    ("github", "deploy_permissions", "ActionsWithoutResourceScope"): (
        "ec2:Describe*, kms:CreateKey, kms:ListAliases, ssm:DescribeParameters and the SSM "
        "command-status calls support no resource-level permissions in IAM"
    ),
    **{
        (env, "host_policy", "PutFlowMetrics"): (
            "cloudwatch:PutMetricData has no resource-level permissions; a condition limits it to"
            " the project's namespace"
        )
        for env in ("dev", "prod")
    },
    **{
        (env, "lake_key_policy", "AccountAdministersAndDelegatesToIam"): (
            'in a KMS key policy Resource "*" means the key itself'
        )
        for env in ("dev", "prod")
    },
}


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


def test_host_role_reaches_only_the_lake_bucket_key_and_its_secret(stacks):
    statements = stacks["prod"]["data"]["aws_iam_policy_document"]["host_policy"]["statement"]
    assert {s["sid"]: s["resources"] for s in statements} == {
        "ListLakeBucket": ["${aws_s3_bucket.lake.arn}"],
        "ReadWriteLakeObjects": ["${aws_s3_bucket.lake.arn}/lake/*"],
        "UseLakeKey": ["${aws_kms_key.lake_key.arn}"],
        "PutFlowMetrics": ["*"],
        "PrefectApiSecret": [
            "arn:${data.aws_partition.partition.partition}:ssm:${var.region}:"
            "${data.aws_caller_identity.account.account_id}:parameter/datalake/prod/prefect-api-auth"
        ],
    }


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
    for sid in ("PlatformBuckets", "PlatformRoles", "AttachOnlySsmCore", "PassHostRoleToEc2"):
        for resource in by_sid[sid]["resources"]:
            assert re.search(r"[:/]datalake-(dev|prod)-", resource), resource
    assert by_sid["PassHostRoleToEc2"]["condition"] == [
        {"test": "StringEquals", "variable": "iam:PassedToService", "values": ["ec2.amazonaws.com"]}
    ]
