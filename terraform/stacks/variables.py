"""Terraform variables shared by the stacks; overridable at apply time with -var or TF_VAR_*."""

from __future__ import annotations

from cdktn import Fn, TerraformVariable
from constructs import Construct

from stacks.config import BRANCH_PATTERN, REPOSITORY_PATTERN, SynthInputs


def _matching(
    scope: Construct, name: str, default: str | None, description: str, pattern: str
) -> str:
    variable = TerraformVariable(
        scope, name, type="string", default=default, description=description
    )
    # No wildcards: this value ends up in the deploy role's trust condition.
    variable.add_validation(
        condition=Fn.can(Fn.regex(pattern, variable.string_value)),
        error_message=f"{name} must match {pattern} (no wildcards).",
    )
    return variable.string_value


def region(scope: Construct, inputs: SynthInputs) -> str:
    return TerraformVariable(
        scope, "region", type="string", default=inputs.region, description="AWS region."
    ).string_value


def repository(scope: Construct, inputs: SynthInputs) -> str:
    return _matching(
        scope, "repository", inputs.repository, "GitHub repository OWNER/NAME.", REPOSITORY_PATTERN
    )


def branch(scope: Construct, inputs: SynthInputs) -> str:
    return _matching(
        scope,
        "branch",
        inputs.branch,
        "The branch that deploys (and is installed at first boot).",
        BRANCH_PATTERN,
    )
