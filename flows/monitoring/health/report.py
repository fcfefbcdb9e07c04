"""Pipeline health's report: success rates and rows written as mermaid charts, then the numbers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from flows.core.artifacts import markdown_table


def _label(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], axis: str) -> str:
    """A mermaid `xychart-beta` bar chart (rendered by the Prefect UI and GitHub)."""
    top = max([*values, 1.0])
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f"    title {_label(title)}",
            f"    x-axis [{', '.join(_label(label) for label in labels)}]",
            f"    y-axis {_label(axis)} 0 --> {top:g}",
            f"    bar [{', '.join(f'{value:g}' for value in values)}]",
            "```",
        ]
    )


def health_markdown(
    flows: Sequence[Mapping[str, Any]],
    writes: Sequence[Mapping[str, Any]],
    window_hours: float,
    rejects: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The report: success rate and rows written as charts, then the numbers, then each
    quarantine's rejects still open and resolved since."""
    parts = [f"# Pipeline health, last {window_hours:g} h"]
    if flows:
        rated = [row for row in flows if row["success_rate"] is not None]
        labels = [str(row["flow"]) for row in rated]
        rates = [100 * float(row["success_rate"]) for row in rated]
        parts += [bar_chart("Success rate per flow (%)", labels, rates, "%"), markdown_table(flows)]
    else:
        parts.append("_No flow runs in the window._")
    per_table: dict[str, int] = defaultdict(int)
    for row in writes:
        per_table[str(row["table"])] += int(row["rows_written"])
    if per_table:
        parts += [
            bar_chart("Rows written per table", list(per_table), list(per_table.values()), "rows"),
            markdown_table(writes),
        ]
    else:
        parts.append("_No rows written to the lake in the window._")
    if rejects:
        open_total = sum(int(row["open_rejects"]) for row in rejects)
        resolved_total = sum(int(row["resolved_rejects"]) for row in rejects)
        parts += [
            f"## Quarantine: {open_total} rejects open, {resolved_total} resolved",
            markdown_table(rejects),
        ]
    return "\n\n".join(parts)
