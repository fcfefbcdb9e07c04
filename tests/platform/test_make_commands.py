"""Every `make X` the READMEs, scripts and messages tell a person to run exists in the Makefile."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = REPO_ROOT / "Makefile"
# A command, not prose such as "would only make the test slow": at a line's start, after a
# quote, a backtick, `(`, `:`, `=` or an environment assignment; then the target and any
# VAR=value arguments.
MAKE_COMMAND = re.compile(
    r"""(?:^|[`'"(:=]|[A-Z][A-Z0-9_]*=\S+)\s*make\s+([a-z][\w-]*)((?:\s+[A-Z][A-Z0-9_]*=\S*)*)""",
    re.M,
)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.decode()
    paths = [REPO_ROOT / name for name in filter(None, listed.split("\0"))]
    return [
        p for p in paths if p.is_file() and p != MAKEFILE and b"\0" not in p.read_bytes()[:1024]
    ]


def make_commands(text: str) -> list[tuple[str, list[str]]]:
    """The `make` commands in a text: (target, variables it sets)."""
    return [
        (target, re.findall(r"([A-Z][A-Z0-9_]*)=", arguments))
        for target, arguments in MAKE_COMMAND.findall(text)
    ]


def makefile_targets() -> set[str]:
    """The targets of the Makefile, from make's own database (`make -pq`)."""
    database = subprocess.run(
        ["make", "--print-data-base", "--question", "--no-builtin-rules", "-f", str(MAKEFILE)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return set(re.findall(r"^([a-z][\w-]*):", database, re.M))


def makefile_reads(variable: str) -> bool:
    return f"$({variable})" in MAKEFILE.read_text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Reset it:    make reset    (also deletes)", [("reset", [])]),
        ("run `make show TABLE=silver/orders` to see", [("show", ["TABLE"])]),
        ("        run: make checkov", [("checkov", [])]),
        ("TF_STATE_BUCKET=b make synth", [("synth", [])]),
        ("or use 'make server' for a native server", [("server", [])]),
        ("Small files make scans slow; that would only make the test slow.", []),
    ],
)
def test_make_commands_are_found_in_text_and_prose_is_not(text, expected):
    assert make_commands(text) == expected


def test_every_printed_make_command_exists_in_the_makefile():
    targets = makefile_targets()
    assert {"test", "up", "down", "reset", "deploy"} <= targets
    problems = []
    for path in tracked_text_files():
        for target, variables in make_commands(path.read_text(errors="replace")):
            where = path.relative_to(REPO_ROOT)
            if target not in targets:
                problems.append(f"{where}: `make {target}` is not a Makefile target")
            problems += [
                f"{where}: `make {target} {name}=...` sets a variable the Makefile never reads"
                for name in variables
                if not makefile_reads(name)
            ]
    assert problems == []
