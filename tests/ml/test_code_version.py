"""code_version(): what a model registry entry records as the code that trained it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from flows.ml.registry import REVISION_FILE, code_version


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def test_a_release_records_the_commit_in_its_revision_file(tmp_path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"  # pragma: allowlist secret
    (tmp_path / REVISION_FILE).write_text(commit)  # no .git: an installed release
    monkeypatch.setenv("LAKE_PROJECT_DIR", str(tmp_path))
    assert code_version() == f"git:{commit}"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the checkout to another user needs root")
def test_a_checkout_owned_by_another_user_still_records_its_commit(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
        "--allow-empty", "-m", "first")  # fmt: skip
    commit = git(repo, "rev-parse", "HEAD")
    for path in (repo, *repo.rglob("*")):  # as on the host: root's checkout, run by another user
        os.chown(path, 12345, 12345, follow_symlinks=False)
    monkeypatch.setenv("LAKE_PROJECT_DIR", str(repo))
    assert code_version() == f"git:{commit}"
