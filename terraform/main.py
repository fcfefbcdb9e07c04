"""Synthesize every stack to cdktf.out/stacks/<name>/cdk.tf.json: `python main.py`, no CLI.

Stacks: `github` (one-time bootstrap: OIDC provider and deploy role), then `dev` and `prod`
(the platform). Inputs come from the environment; see terraform/README.md.
"""

from __future__ import annotations

from cdktn import App
from stacks.config import ENVIRONMENTS, synth_inputs
from stacks.github import GithubDeployStack
from stacks.platform import PlatformStack

# S3-native state locking (`use_lockfile`) needs Terraform 1.10+; older versions reject the
# backend block. (A `required_version` override would say so too, but checkov cannot parse it.)
TERRAFORM_VERSION = ">=1.10.0"


def main() -> None:
    inputs = synth_inputs()
    app = App(context={"targetVersions": {"terraform": TERRAFORM_VERSION}})
    GithubDeployStack(app, ENVIRONMENTS, inputs)
    for env in ENVIRONMENTS:
        PlatformStack(app, env, inputs)
    app.synth()


if __name__ == "__main__":
    main()
