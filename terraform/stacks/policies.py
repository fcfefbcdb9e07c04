"""IAM policy documents as plain data, so tests can read exactly what is granted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cdktn_provider_aws.data_aws_iam_policy_document import (
    DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition,
    DataAwsIamPolicyDocumentStatementPrincipals,
)
from constructs import Construct


@dataclass(frozen=True)
class Condition:
    test: str
    variable: str
    values: Sequence[str]


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: Sequence[str]
    resources: Sequence[str] = ()
    effect: str = "Allow"
    principals: Sequence[tuple[str, Sequence[str]]] = ()
    """(type, identifiers) pairs, for resource and trust policies."""
    conditions: Sequence[Condition] = field(default_factory=tuple)


def policy_document(scope: Construct, id_: str, statements: Sequence[Statement]) -> str:
    """Declare a policy document data source and return its JSON (a token)."""
    document = DataAwsIamPolicyDocument(
        scope,
        id_,
        statement=[
            DataAwsIamPolicyDocumentStatement(
                sid=s.sid,
                effect=s.effect,
                actions=list(s.actions),
                resources=list(s.resources) or None,
                principals=[
                    DataAwsIamPolicyDocumentStatementPrincipals(type=kind, identifiers=list(ids))
                    for kind, ids in s.principals
                ]
                or None,
                condition=[
                    DataAwsIamPolicyDocumentStatementCondition(
                        test=c.test, variable=c.variable, values=list(c.values)
                    )
                    for c in s.conditions
                ]
                or None,
            )
            for s in statements
        ],
    )
    return document.json
