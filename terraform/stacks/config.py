"""Per-environment settings and the synth-time inputs read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

PROJECT = "datalake"
METRIC_NAMESPACE = "DataLake"
"""CloudWatch namespace of the flows' metrics (the AWS example's default)."""
WORK_POOL = "lake-process"
"""The work pool every deployment in prefect.yaml targets; the host's worker serves it."""
DEPLOY_ROLE = f"{PROJECT}-github-deploy"
"""The role the deploy workflow assumes (github stack); platform keys name it their admin."""
BOUNDARY_POLICY = f"{PROJECT}-role-boundary"
"""Managed policy of the github stack (applied by a person): the permissions boundary every role a
platform stack creates must carry, and that the deploy role cannot change."""
AUTH_PARAMETER = "/{project}/{environment}/prefect-api-auth"
"""SSM SecureString with the Prefect API's `user:password`; the host creates it at first boot."""

REPOSITORY_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
BRANCH_PATTERN = r"^[A-Za-z0-9_./-]+$"
"""Repository and branch end up in the deploy role's trust condition: no wildcards."""


@dataclass(frozen=True)
class Environment:
    """One isolated copy of the platform (its own state, bucket, key, role and host)."""

    name: str
    instance_type: str
    noncurrent_version_days: int
    landing_expiry_days: int

    @property
    def prefix(self) -> str:
        """Name prefix of every resource of this environment; the deploy role is scoped to it."""
        return f"{PROJECT}-{self.name}"

    @property
    def artifact_bucket_prefix(self) -> str:
        """Names the release artifacts bucket (`<prefix>-<account>-<region>`)."""
        return f"{self.prefix}-artifacts"

    @property
    def auth_parameter(self) -> str:
        return AUTH_PARAMETER.format(project=PROJECT, environment=self.name)


ENVIRONMENTS = (
    Environment("dev", "t3.medium", noncurrent_version_days=7, landing_expiry_days=30),
    Environment("prod", "t3.large", noncurrent_version_days=30, landing_expiry_days=90),
)


@dataclass(frozen=True)
class SynthInputs:
    """What differs between one AWS account and another; read once, when `main.py` runs."""

    state_bucket: str
    state_region: str
    region: str
    repository: str | None
    branch: str


def synth_inputs(environ: dict[str, str] | None = None) -> SynthInputs:
    """Read the synth inputs; a missing state bucket is an error that says what to set."""
    env = os.environ if environ is None else environ
    state_bucket = env.get("TF_STATE_BUCKET", "")
    if not state_bucket:
        raise SystemExit(
            "TF_STATE_BUCKET is not set: name the S3 bucket that holds Terraform state "
            "(terraform/README.md, 'Bootstrap'), e.g. TF_STATE_BUCKET=my-tfstate python main.py"
        )
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    return SynthInputs(
        state_bucket=state_bucket,
        state_region=env.get("TF_STATE_REGION") or region,
        region=region,
        repository=env.get("GITHUB_REPOSITORY") or None,
        branch=env.get("DEPLOY_BRANCH", "main"),
    )
