"""A flow's command line, generated from its signature so an option never drifts from its parameter.

Each parameter becomes `--kebab-case-name`; its annotation gives the type (`int`, `float`, `str`,
`date`, `datetime`, a `Literal` as choices, `bool` as `--x/--no-x`, `list[X]` as one or more values
that repeated options add up, `dict[str, str]` or `dict[str, list[str]]` as `KEY=VALUE` items, list
values comma-separated), `X | None` makes it optional, a parameter without a default is required,
and the help is the parameter's entry in the flow docstring's `Args:` section. A documented
spelling that differs from the parameter's is declared beside it:
`sources: Annotated[list[str] | None, cli("--source")] = None`.

    if __name__ == "__main__":
        run_from_command_line(s3_data_pipeline)
"""

import argparse
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal, cast

from prefect import Flow

from flows.core.errors import ConfigurationError
from flows.core.local_server import using_background_server

__all__ = ["Option", "cli", "command_line_parser", "parameter_docs", "run_from_command_line"]

_Converter = Callable[[str], Any]
_SCALARS: dict[type, _Converter] = {
    int: int,
    float: float,
    str: str,
    date: date.fromisoformat,
    datetime: datetime.fromisoformat,
}


@dataclass(frozen=True)
class Option:
    """How a parameter is spelled on the command line beyond its own `--kebab-case` name."""

    aliases: tuple[str, ...] = ()
    const: str | None = None
    metavar: str | None = None


def cli(*aliases: str, const: str | None = None, metavar: str | None = None) -> Option:
    """Extra spellings of a parameter's option; with `const`, the option may be given bare.

    Args:
        aliases: further option strings, such as "--source" beside "--sources".
        const: the value of the option given without one (`--retry-failed` means "all").
        metavar: the value's name in the help.
    """
    return Option(aliases=aliases, const=const, metavar=metavar)


def parameter_docs(docstring: str | None) -> dict[str, str]:
    """The `Args:` section of a Google-style docstring as {parameter: its text on one line}."""
    lines = inspect.cleandoc(docstring or "").splitlines()
    if "Args:" not in lines:
        return {}
    docs: dict[str, str] = {}
    indent, name = 0, ""
    for line in lines[lines.index("Args:") + 1 :]:
        if line and not line.startswith(" "):
            break  # the next section
        depth = len(line) - len(line.lstrip())
        entry = re.match(r"^\s+\**(\w+)(?: \([^)]*\))?:(.*)$", line)
        if entry and depth <= (indent or depth):
            indent, name = depth, entry.group(1)
            docs[name] = entry.group(2).strip()
        elif name and line.strip():
            docs[name] = f"{docs[name]} {line.strip()}".strip()
    return docs


class _Extend(argparse.Action):
    """List values add up over repeated options; the first one given replaces the default."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        current = getattr(namespace, self.dest)
        kept = [] if current is self.default else list(current)
        setattr(namespace, self.dest, kept + list(values or ()))


class _Merge(argparse.Action):
    """`KEY=VALUE` items merge over repeated options; the first one given replaces the default."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        current = getattr(namespace, self.dest)
        pairs = cast(list[tuple[str, Any]], values)  # nargs="+" of `KEY=VALUE` items
        kept = {} if current is self.default else dict(current)
        setattr(namespace, self.dest, kept | dict(pairs))


def _unwrap(annotation: Any) -> tuple[Any, Option]:
    """The type under `Annotated` and `| None`, and the `Option` declared with it."""
    option = Option()
    if typing.get_origin(annotation) is Annotated:
        annotation, *extras = typing.get_args(annotation)
        option = next((x for x in extras if isinstance(x, Option)), option)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], option
    return annotation, option


def _scalar(annotation: Any, where: str) -> tuple[_Converter, list[Any] | None]:
    """How to read one value of `annotation` from text, and its choices if it is a `Literal`."""
    if typing.get_origin(annotation) is Literal:
        choices = list(typing.get_args(annotation))
        return type(choices[0]), choices
    if annotation in _SCALARS:
        return _SCALARS[annotation], None
    if typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,):
        return lambda text: [part.strip() for part in text.split(",") if part.strip()], None
    raise TypeError(f"{where}: the command line cannot express {annotation!r}")


def _key_value(convert: _Converter) -> _Converter:
    def parse(text: str) -> tuple[str, Any]:
        key, sep, value = text.partition("=")
        if not key or not sep or not value:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
        return key, convert(value)

    return parse


def _add_parameter(
    parser: argparse.ArgumentParser, parameter: inspect.Parameter, annotation: Any, help_text: str
) -> None:
    base, option = _unwrap(annotation)
    where = f"parameter {parameter.name}"
    flags = [f"--{parameter.name.replace('_', '-')}", *option.aliases]
    required = parameter.default is inspect.Parameter.empty
    default = None if required else parameter.default
    if default is not None and default not in ([], {}):
        help_text = f"{help_text.rstrip('.')} (default: {default})".strip()
    kwargs: dict[str, Any] = {"dest": parameter.name, "default": default, "help": help_text}
    if required:
        kwargs["required"] = True
    if option.metavar:
        kwargs["metavar"] = option.metavar
    origin = typing.get_origin(base)
    if base is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif origin is list:
        (item,) = typing.get_args(base)
        kwargs |= {"action": _Extend, "nargs": "+", "type": _scalar(item, where)[0]}
    elif origin is dict:
        key, value = typing.get_args(base)
        if key is not str:
            raise TypeError(f"{where}: only dict[str, ...] has a command-line form")
        kwargs |= {"action": _Merge, "nargs": "+", "type": _key_value(_scalar(value, where)[0])}
        kwargs.setdefault("metavar", "KEY=VALUE")
    else:
        kwargs["type"], kwargs["choices"] = _scalar(base, where)
        if option.const is not None:
            kwargs |= {"nargs": "?", "const": option.const}
    parser.add_argument(*flags, **kwargs)


def command_line_parser(
    flow: Flow[..., Any], *, settings: Mapping[str, str] | None = None
) -> argparse.ArgumentParser:
    """The flow's argparse parser: one option per parameter, plus options that set settings.

    Args:
        flow: the flow whose signature and docstring define the options.
        settings: option -> environment variable it sets for this run, for values that must
            never become a run parameter (a DSN with a password).
    """
    parser = argparse.ArgumentParser(description=flow.description, allow_abbrev=False)
    hints = typing.get_type_hints(flow.fn, include_extras=True)
    docs = parameter_docs(flow.fn.__doc__)
    for parameter in inspect.signature(flow.fn).parameters.values():
        _add_parameter(parser, parameter, hints[parameter.name], docs.get(parameter.name, ""))
    for flag, variable in (settings or {}).items():
        parser.add_argument(
            flag,
            dest=f"setting:{variable}",
            metavar="VALUE",
            help=f"sets {variable} for this run (never a run parameter)",
        )
    return parser


def run_from_command_line(
    flow: Flow[..., Any],
    argv: Sequence[str] | None = None,
    *,
    settings: Mapping[str, str] | None = None,
    check: Callable[[], object] | None = None,
) -> Any:
    """Parse the command line into the flow's parameters and run it; returns what it returns.

    Args:
        flow: the flow to run.
        argv: the arguments (default: sys.argv[1:]).
        settings: options that set an environment variable instead of a parameter.
        check: called before the flow starts; its ConfigurationError is a usage error (exit 2).
    """
    parser = command_line_parser(flow, settings=settings)
    parameters = vars(parser.parse_args(argv))
    for key in [k for k in parameters if k.startswith("setting:")]:
        value = parameters.pop(key)
        if value is not None:
            os.environ[key.removeprefix("setting:")] = value
    if check is not None:
        try:
            check()
        except ConfigurationError as error:
            parser.error(str(error))
    with using_background_server():
        return flow(**parameters)
