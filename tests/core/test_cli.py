"""The command line generated from a flow's signature: types, defaults, help, spellings, running."""

import argparse
import os
from datetime import date
from typing import Annotated, Literal

import pytest
from prefect import flow

from flows.core.cli import cli, command_line_parser, parameter_docs, run_from_command_line
from flows.core.errors import ConfigurationError


@flow(name="Toy", description="A flow with one parameter of every supported kind.")
def toy(
    customer_id: int,
    rate: float = 0.5,
    name: str = "orders",
    since: date | None = None,
    mode: Literal["fast", "exact"] = "exact",
    force: bool = False,
    bootstrap: bool = True,
    seed_samples: bool | None = None,
    sources: Annotated[list[str] | None, cli("--source")] = None,
    days: list[date] | None = None,
    columns: list[str] | None = None,
    z_order: dict[str, list[str]] | None = None,
    labels: dict[str, str] | None = None,
    retry_failed: Annotated[str | None, cli(const="all", metavar="PATH")] = None,
) -> dict[str, object]:
    """Return the parameters it got.

    Args:
        customer_id: the subject.
        rate: a share,
            continued on a second line.
        name (str): a table name.
        sources: only these sources.

    Returns:
        every parameter.
    """
    return dict(locals())


def parse(*argv):
    return vars(command_line_parser(toy).parse_args(["--customer-id", "7", *argv]))


def test_defaults_come_from_the_signature():
    assert parse() == {
        "customer_id": 7,
        "rate": 0.5,
        "name": "orders",
        "since": None,
        "mode": "exact",
        "force": False,
        "bootstrap": True,
        "seed_samples": None,
        "sources": None,
        "days": None,
        "columns": None,
        "z_order": None,
        "labels": None,
        "retry_failed": None,
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--rate", "0.25"], {"rate": 0.25}),
        (["--since", "2024-02-29"], {"since": date(2024, 2, 29)}),
        (["--mode", "fast"], {"mode": "fast"}),
        (["--force"], {"force": True}),
        (["--no-bootstrap"], {"bootstrap": False}),
        (["--seed-samples"], {"seed_samples": True}),
        (["--no-seed-samples"], {"seed_samples": False}),
        (
            ["--source", "orders", "--sources", "customers", "products"],
            {"sources": ["orders", "customers", "products"]},
        ),
        (["--days", "2024-01-01", "2024-01-02"], {"days": [date(2024, 1, 1), date(2024, 1, 2)]}),
        (
            ["--z-order", "silver/events=event_time", "silver/orders=customer_id, order_date"],
            {
                "z_order": {
                    "silver/events": ["event_time"],
                    "silver/orders": ["customer_id", "order_date"],
                }
            },
        ),
        (
            ["--labels", "team=data", "--labels", "tier=1"],
            {"labels": {"team": "data", "tier": "1"}},
        ),
        (["--retry-failed"], {"retry_failed": "all"}),
        (["--retry-failed", "orders/2024.csv"], {"retry_failed": "orders/2024.csv"}),
    ],
)
def test_each_kind_of_parameter_parses_to_its_type(argv, expected):
    assert parse(*argv).items() >= expected.items()


def test_a_list_option_given_replaces_a_list_default_instead_of_adding_to_it():
    @flow(name="Lists", description="d")
    def lists(columns: list[str] = ["a"]) -> None:  # noqa: B006 (never mutated)
        """Do nothing."""

    parser = command_line_parser(lists)
    assert parser.parse_args([]).columns == ["a"]
    assert parser.parse_args(["--columns", "b", "--columns", "c"]).columns == ["b", "c"]


@pytest.mark.parametrize(
    "argv",
    [
        [],  # --customer-id has no default: required
        ["--customer-id", "x"],
        ["--customer-id", "1", "--mode", "slow"],
        ["--customer-id", "1", "--since", "yesterday"],
        ["--customer-id", "1", "--z-order", "silver/events"],  # no =columns
        ["--customer-id", "1", "--customer", "2"],  # no abbreviations: they break when one is added
    ],
)
def test_a_bad_command_line_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        command_line_parser(toy).parse_args(argv)
    assert stopped.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_help_comes_from_the_docstring_and_shows_the_default():
    parser = command_line_parser(toy)
    helps = {action.dest: action.help for action in parser._actions}
    assert parser.description == "A flow with one parameter of every supported kind."
    assert helps["customer_id"] == "the subject."
    assert helps["rate"] == "a share, continued on a second line (default: 0.5)"
    assert helps["name"] == "a table name (default: orders)"
    assert helps["columns"] == ""


def test_parameter_docs_reads_google_style_args():
    docs = parameter_docs(toy.fn.__doc__)
    assert docs == {
        "customer_id": "the subject.",
        "rate": "a share, continued on a second line.",
        "name": "a table name.",
        "sources": "only these sources.",
    }
    assert parameter_docs("One line.") == {}
    assert parameter_docs(None) == {}


def test_a_type_the_command_line_cannot_express_is_refused_when_the_parser_is_built():
    @flow(name="Odd", description="d")
    def odd(weights: dict[int, float] | None = None) -> None:
        """Do nothing."""

    with pytest.raises(TypeError, match="weights"):
        command_line_parser(odd)


def test_run_from_command_line_sets_settings_checks_then_runs(monkeypatch, prefect_api):
    monkeypatch.delenv("LAKE_TOY_SECRET", raising=False)
    seen = []

    def check():
        seen.append(os.environ["LAKE_TOY_SECRET"])

    result = run_from_command_line(
        toy,
        ["--customer-id", "3", "--source", "orders", "--secret", "s3cr3t"],
        settings={"--secret": "LAKE_TOY_SECRET"},  # pragma: allowlist secret
        check=check,
    )
    assert seen == ["s3cr3t"]
    assert result["customer_id"] == 3
    assert result["sources"] == ["orders"]
    assert set(result) == set(parse())  # the setting is no parameter


def test_a_failed_check_is_a_usage_error_and_the_flow_never_runs(capsys):
    def check():
        raise ConfigurationError("no source configured: set LAKE_TOY_SECRET (or pass --secret)")

    with pytest.raises(SystemExit) as stopped:
        run_from_command_line(toy, ["--customer-id", "1"], check=check)
    assert stopped.value.code == 2
    assert "no source configured" in capsys.readouterr().err


def test_settings_options_say_what_they_set():
    parser = command_line_parser(toy, settings={"--secret": "LAKE_TOY_SECRET"})
    action = next(a for a in parser._actions if "--secret" in a.option_strings)
    assert "LAKE_TOY_SECRET" in (action.help or "")
    assert isinstance(parser, argparse.ArgumentParser)
