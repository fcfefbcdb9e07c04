"""Conventions the READMEs promise, checked against the code so the docs stay true."""

import argparse
import ast
import contextlib
import importlib
import inspect
import io
import re
import runpy
import sys
import typing
from pathlib import Path

import pytest
import yaml
from prefect import Flow

from flows.core.cli import command_line_parser
from tests.conftest import REPO_ROOT

FLOW_DIRS = ("examples", "etl", "ml", "monitoring")
TITLE_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*( [A-Z][A-Za-z0-9]*)*$")
FLOWS_README = REPO_ROOT / "flows" / "README.md"
READMES = [REPO_ROOT / "README.md", FLOWS_README]


def modules() -> list[Path]:
    return sorted(
        path
        for category in FLOW_DIRS
        for path in (REPO_ROOT / "flows" / category).glob("*.py")
        if path.name != "__init__.py"
    )


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)


def flows_in(path: Path) -> dict[str, Flow]:
    """The flows a category file defines, or re-exports in `__all__` from its flow package."""
    module = importlib.import_module(module_name(path))
    exported = set(getattr(module, "__all__", ()))
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, Flow) and (value.fn.__module__ == module.__name__ or name in exported)
    }


FLOWS = [(path, name, flow) for path in modules() for name, flow in flows_in(path).items()]
FLOW_IDS = [f"{path.parent.name}/{name}" for path, name, _ in FLOWS]
FLOW_FILES = sorted({path for path, _, _ in FLOWS})
MAX_FLOW_MODULE_LINES = 200


def deployments() -> list[dict]:
    return yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"] or []


def test_flows_are_found():
    assert len(FLOWS) >= 2


def test_category_modules_are_flows_tables_or_shared_and_none_is_private():
    """A category's top level holds its flow commands, `tables.py` and public shared modules; a
    flow's own helpers live in its package, and no module name starts with an underscore."""
    private = [
        str(path.relative_to(REPO_ROOT))
        for category in FLOW_DIRS
        for path in (REPO_ROOT / "flows" / category).rglob("_*.py")
        if path.name != "__init__.py"
    ]
    assert private == []
    assert [p.name for p in modules() if p.stem.endswith("_transforms")] == []


@pytest.mark.parametrize(("path", "name", "flow"), FLOWS, ids=FLOW_IDS)
def test_a_flow_module_stays_under_the_line_limit(path, name, flow):
    source = Path(sys.modules[flow.fn.__module__].__file__ or "")
    lines = len(source.read_text().splitlines())
    assert lines <= MAX_FLOW_MODULE_LINES, (
        f"{source.relative_to(REPO_ROOT)} has {lines} lines: move pure logic into its package"
    )


@pytest.mark.parametrize(("path", "name", "flow"), FLOWS, ids=FLOW_IDS)
def test_a_flow_from_a_package_has_a_thin_command_file(path, name, flow):
    """`python flows/<category>/<flow>.py` stays the command; the flow lives in `<package>/flow.py`."""
    if flow.fn.__module__ == module_name(path):
        return
    package = flow.fn.__module__.rsplit(".", 2)
    assert package[0] == f"flows.{path.parent.name}", f"{path.name} re-exports another category"
    assert package[2] == "flow", f"{flow.fn.__module__} should be <package>.flow"
    tree = ast.parse(path.read_text())
    statements = [n for n in tree.body if not isinstance(n, ast.Expr)]  # the docstring
    assert all(isinstance(n, ast.ImportFrom | ast.Assign | ast.If) for n in statements), (
        f"{path.name} should only import the flow, set __all__ and call main()"
    )


@pytest.mark.parametrize(("path", "name", "flow"), FLOWS, ids=FLOW_IDS)
def test_flow_has_a_title_case_name_and_a_description(path, name, flow):
    assert TITLE_CASE.match(flow.name), f"{path}: @flow(name={flow.name!r}) is not Title Case"
    assert flow.description, f"{path}: @flow({name}) has no description"


@pytest.mark.parametrize(("path", "name", "flow"), FLOWS, ids=FLOW_IDS)
def test_flow_has_a_deployment(path, name, flow):
    entrypoint = f"{path.relative_to(REPO_ROOT)}:{name}"
    assert entrypoint in {d["entrypoint"] for d in deployments()}, f"no deployment for {entrypoint}"


@pytest.mark.parametrize(("path", "name", "flow"), FLOWS, ids=FLOW_IDS)
def test_flow_has_a_line_in_flows_readme(path, name, flow):
    assert f"`{path.relative_to(REPO_ROOT / 'flows')}`" in FLOWS_README.read_text()


@pytest.mark.parametrize(("path", "name", "flow"), FLOWS, ids=FLOW_IDS)
def test_flow_is_named_in_the_top_level_readme(path, name, flow):
    row = f"| `{path.parent.name}/` |"
    rows = [
        line for line in (REPO_ROOT / "README.md").read_text().splitlines() if line.startswith(row)
    ]
    assert rows, f"README.md's table of flows has no row for {path.parent.name}/"
    assert f"`{path.name}`" in rows[0], f"README.md's table of flows lacks {path.name}"


def documented_flags(path: Path) -> set[str]:
    """The options flows/README.md's row and the command file's docstring show for `path`."""
    relative = str(path.relative_to(REPO_ROOT / "flows"))
    row = next(
        line for line in FLOWS_README.read_text().splitlines() if f"| `{relative}` |" in line
    )
    usage = [line for line in (ast.get_docstring(ast.parse(path.read_text())) or "").splitlines()
             if f"flows/{relative}" in line]  # fmt: skip
    text = row.split(" | ")[2] + "\n".join(usage)
    return {
        flag.replace("[no-]", "") for flag in re.findall(r"--(?:\[no-\])?[a-z][a-z0-9-]*", text)
    }


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_flow_script_answers_help_with_every_documented_option(path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_info.value.code == 0
    assert "usage:" in out.getvalue()
    undocumented = sorted(
        flag
        for flag in documented_flags(path)
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", out.getvalue())
    )
    assert undocumented == [], f"{path.name} --help lacks options its docs show"


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_flow_script_builds_its_command_line_from_the_flow(path):
    """`run_from_command_line(flow)`, never a parser written by hand beside the signature."""
    calls = [
        node.func.id
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]
    assert "run_from_command_line" in calls
    assert "ArgumentParser" not in path.read_text()


@pytest.mark.parametrize(("path", "name", "flow"), FLOWS, ids=FLOW_IDS)
def test_flow_options_equal_its_parameters(path, name, flow):
    """One option per parameter: its name, default and type, and help from the docstring."""
    options = {
        action.dest: action
        for action in command_line_parser(flow)._actions
        if action.option_strings and action.dest != "help"
    }
    parameters = inspect.signature(flow.fn).parameters
    assert list(options) == list(parameters)
    for parameter in parameters.values():
        option = options[parameter.name]
        flag = f"--{parameter.name.replace('_', '-')}"
        assert flag in option.option_strings
        assert option.help, f"{flag} has no help: describe {parameter.name} under Args:"
        if parameter.default is inspect.Parameter.empty:
            assert option.required, flag
            continue
        assert option.default == parameter.default, flag
        annotation = typing.get_type_hints(flow.fn)[parameter.name]
        if annotation in (bool, bool | None):
            assert isinstance(option, argparse.BooleanOptionalAction), flag
        elif annotation in (int, float, str):
            parsed = option.type(str(parameter.default))
            assert (type(parsed), parsed) == (annotation, parameter.default), flag


def test_every_deployment_points_at_an_existing_flow():
    known = {f"{path.relative_to(REPO_ROOT)}:{name}" for path, name, _ in FLOWS}
    assert [d["entrypoint"] for d in deployments() if d["entrypoint"] not in known] == []


def shell_lines(readme: Path) -> list[str]:
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme.read_text(), flags=re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.M))


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_readme_commands_name_files_and_targets_that_exist(readme):
    lines = [line for line in shell_lines(readme) if line]
    assert lines, f"{readme} shows no commands"
    targets = makefile_targets()
    for line in lines:
        for target in re.findall(r"\bmake ([a-z][\w-]*)", line):
            assert target in targets, f"{readme.name}: `{line}` names no Makefile target {target}"
        for path in re.findall(
            r"(?<![\w/.])((?:flows|docker|terraform|deploy|bench|tests)/[\w./-]+)", line
        ):
            assert (REPO_ROOT / path).exists(), (
                f"{readme.name}: `{line}` names {path}, which is missing"
            )


def test_every_setting_is_documented_in_the_readme():
    from flows.core.settings import LakeSettings

    readme = (REPO_ROOT / "README.md").read_text()
    undocumented = [
        f"LAKE_{name.upper()}"
        for name in LakeSettings.model_fields
        if f"`LAKE_{name.upper()}`" not in readme
    ]
    assert undocumented == []


def flows_imports(path: Path) -> set[str]:
    """Every `flows...` name `path` imports (`from flows.x import y` is `flows.x.y`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("flows")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flows"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def allowed_imports(path: Path) -> tuple[str, ...]:
    """The layering: core imports only core; a category imports core, the catalog, the samples
    and itself; the catalog imports core and each category's tables module only."""
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    if parts[1] == "core":
        return ("flows.core",)
    if parts[1] == "catalog":
        return ("flows.core", *(f"flows.{category}.tables" for category in FLOW_DIRS))
    if parts[1] == "samples":
        return ("flows.core", "flows.catalog")
    return ("flows.core", "flows.catalog", "flows.samples", f"flows.{parts[1]}")


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (REPO_ROOT / "flows").rglob("*.py") if p.name != "__init__.py"),
    ids=lambda p: str(p.relative_to(REPO_ROOT / "flows")),
)
def test_modules_import_only_across_the_allowed_layers(path):
    allowed = allowed_imports(path)
    crossing = sorted(
        module
        for module in flows_imports(path)
        if not any(module == a or module.startswith(f"{a}.") for a in allowed)
    )
    assert crossing == [], f"{path.name} imports {crossing}; tables meet through flows.catalog"


def test_the_layering_check_finds_a_crossing(tmp_path):
    module = tmp_path / "x.py"
    module.write_text("from flows.ml.tables import ORDER_FEATURES\nfrom flows import samples\n")
    assert flows_imports(module) == {"flows.ml.tables.ORDER_FEATURES", "flows.samples"}


def test_retry_policies_come_from_the_presets():
    """`@task(**LAKE_WRITE, ...)`: retry counts and delays are tuned in flows/core/tasks.py only."""
    literal = re.compile(r"\bretries\s*=|retry_delay_seconds\s*=")
    written_by_hand = [
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "flows").rglob("*.py")
        if path != REPO_ROOT / "flows" / "core" / "tasks.py" and literal.search(path.read_text())
    ]
    assert written_by_hand == []


def private_crossings(path: Path) -> list[str]:
    return private_crossings_of(path, module_name(path))


def private_crossings_of(path: Path, importer: str) -> list[str]:
    """Names `path` (module `importer`) imports that are private (`_x`) to another package."""
    found = []
    for name in flows_imports(path):
        parts = name.split(".")
        private = [i for i, part in enumerate(parts) if part.startswith("_") and part[:2] != "__"]
        if private and not importer.startswith(".".join(parts[: private[0]]) + "."):
            found.append(name)
    return sorted(found)


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for folder in ("flows", "tests", "bench")
        for p in (REPO_ROOT / folder).rglob("*.py")
        if ".venv" not in p.parts
    ),
    ids=lambda p: str(p.relative_to(REPO_ROOT)),
)
def test_nothing_private_is_imported_from_outside_its_package(path):
    assert private_crossings(path) == []


def test_the_privacy_check_finds_a_crossing(tmp_path):
    module = tmp_path / "x.py"
    module.write_text(
        "from flows.etl._landing import text_batches\nfrom flows.core.lake import _frame\n"
    )
    assert private_crossings_of(module, "tests.x") == [
        "flows.core.lake._frame",
        "flows.etl._landing.text_batches",
    ]
    assert private_crossings_of(module, "flows.etl.x") == ["flows.core.lake._frame"]
