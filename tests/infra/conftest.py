"""Synthesize the Terraform stacks once per session, the way `make synth` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
SYNTH_ENV = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "TF_STATE_BUCKET": "example-tfstate",
    "TF_STATE_REGION": "eu-central-1",
    "AWS_REGION": "eu-west-1",
    "GITHUB_REPOSITORY": "acme/datalake",
}
STACK_NAMES = ("github", "dev", "prod")


@pytest.fixture(scope="session")
def synth_env() -> dict[str, str]:
    """The synth inputs the tests use (a CI run sets the same names from repository variables)."""
    return dict(SYNTH_ENV)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory, synth_env: dict[str, str]) -> Path:
    """`python main.py` into a temporary cdktf.out; returns its stacks/ folder."""
    out = tmp_path_factory.mktemp("cdktf.out")
    env = {**os.environ, **synth_env, "CDKTF_OUTDIR": str(out)}
    result = subprocess.run(
        [sys.executable, "main.py"],
        cwd=TERRAFORM_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out / "stacks"


@pytest.fixture(scope="session")
def stacks(synth_dir: Path) -> dict[str, dict[str, Any]]:
    """Each stack's synthesized Terraform JSON, by stack name."""
    return {
        name: json.loads((synth_dir / name / "cdk.tf.json").read_text()) for name in STACK_NAMES
    }


@pytest.fixture(scope="session")
def checkov() -> Path:
    """checkov from its own venv (`make test` installs it): skip without it locally, fail in CI."""
    path = REPO_ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"
    if not path.exists():
        reason = f"{path} is missing; `make test` or `make checkov` installs it"
        if os.environ.get("LAKE_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (LAKE_TEST_REQUIRE_SERVICES=1 turns this skip into a failure)")
        pytest.skip(reason)
    return path
