"""The training report: metrics, confusion matrix, calibration and hand-drawn SVG plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from flows.core.artifacts import markdown_table
from flows.ml import modeling

_SIZE = 240
_MARGIN = 32


def roc_svg(fpr: Sequence[float], tpr: Sequence[float], auc: float) -> str:
    """The ROC curve as a small standalone SVG (no plotting library needed)."""
    side = _SIZE - 2 * _MARGIN

    def point(x: float, y: float) -> str:
        return f"{_MARGIN + x * side:.1f},{_MARGIN + (1 - y) * side:.1f}"

    curve = " ".join(point(x, y) for x, y in zip(fpr, tpr, strict=True))
    low, high = _MARGIN, _MARGIN + side
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SIZE}" height="{_SIZE}"'
        f' viewBox="0 0 {_SIZE} {_SIZE}" font-family="sans-serif" font-size="10">'
        f'<rect x="{low}" y="{low}" width="{side}" height="{side}" fill="none" stroke="#888"/>'
        f'<line x1="{low}" y1="{high}" x2="{high}" y2="{low}" stroke="#bbb"'
        ' stroke-dasharray="4 3"/>'
        f'<polyline points="{curve}" fill="none" stroke="#1f77b4" stroke-width="2"/>'
        f'<text x="{_SIZE / 2}" y="{_SIZE - 8}" text-anchor="middle">false positive rate</text>'
        f'<text x="10" y="{_SIZE / 2}" text-anchor="middle"'
        f' transform="rotate(-90 10 {_SIZE / 2})">true positive rate</text>'
        f'<text x="{_SIZE / 2}" y="20" text-anchor="middle">ROC, AUC = {auc:.3f}</text>'
        "</svg>"
    )


def confusion_svg(matrix: Sequence[Sequence[int]]) -> str:
    """A 2x2 confusion matrix as SVG, cells shaded by count."""
    cell = (_SIZE - 2 * _MARGIN) // 2
    peak = max(max(row) for row in matrix) or 1
    cells = []
    for r, row in enumerate(matrix):
        for c, count in enumerate(row):
            x, y = _MARGIN + c * cell, _MARGIN + r * cell
            shade = int(235 - 170 * count / peak)
            cells.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}"'
                f' fill="rgb({shade},{shade},255)" stroke="#fff"/>'
                f'<text x="{x + cell / 2}" y="{y + cell / 2}" text-anchor="middle">{count}</text>'
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SIZE}" height="{_SIZE}"'
        f' viewBox="0 0 {_SIZE} {_SIZE}" font-family="sans-serif" font-size="12">'
        + "".join(cells)
        + f'<text x="{_SIZE / 2}" y="{_SIZE - 8}" text-anchor="middle">predicted 0 | 1</text>'
        f'<text x="12" y="{_SIZE / 2}" text-anchor="middle"'
        f' transform="rotate(-90 12 {_SIZE / 2})">actual 0 | 1</text>'
        "</svg>"
    )


def training_report(
    *,
    title: str,
    metrics: Mapping[str, Mapping[str, float]],
    matrix: Sequence[Sequence[int]],
    calibration: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    decision: str,
    plots: Mapping[str, str],
) -> str:
    """Markdown: metrics per model side by side, confusion matrix, calibration, links to plots."""
    names = sorted({name for values in metrics.values() for name in values})
    metric_rows = [
        {"metric": name, **{model: values.get(name) for model, values in metrics.items()}}
        for name in names
    ]
    matrix_rows = [
        {"": "actual 0", "predicted 0": matrix[0][0], "predicted 1": matrix[0][1]},
        {"": "actual 1", "predicted 0": matrix[1][0], "predicted 1": matrix[1][1]},
    ]
    links = " · ".join(f"[{escape(label)}]({target})" for label, target in plots.items())
    return "\n\n".join(
        [
            f"# {title}",
            f"**Promotion:** {decision}",
            "## Holdout metrics\n\n" + markdown_table(metric_rows),
            "## Confusion matrix (threshold 0.5)\n\n" + markdown_table(matrix_rows),
            "## Calibration\n\n" + markdown_table(list(calibration)),
            "## Best parameters\n\n"
            + markdown_table([{"param": k, "value": str(v)} for k, v in params.items()]),
            f"## Plots\n\n{links}",
        ]
    )


def report_files(
    candidate: modeling.Candidate,
    *,
    title: str,
    version: int,
    production: tuple[int, Mapping[str, float]] | None,
    decision: str,
) -> dict[str, str]:
    """`report.md`, `roc.svg` and `confusion_matrix.svg`, saved beside the candidate's model.

    Args:
        production: the production version and its metrics on the candidate's holdout, if any.
    """
    labels, scores = candidate.holdout_labels, candidate.scores
    compared: dict[str, Mapping[str, float]] = {f"v{version} (candidate)": candidate.metrics}
    if production is not None:
        compared[f"v{production[0]} (production)"] = production[1]
    fpr, tpr = modeling.roc_points(labels, scores)
    matrix = modeling.confusion(labels, scores)
    report = training_report(
        title=title,
        metrics=compared,
        matrix=matrix,
        calibration=modeling.calibration_table(labels, scores),
        params=candidate.params,
        decision=decision,
        plots={"ROC curve": "roc.svg", "Confusion matrix": "confusion_matrix.svg"},
    )
    return {
        "report.md": report,
        "roc.svg": roc_svg(fpr, tpr, candidate.metrics["roc_auc"]),
        "confusion_matrix.svg": confusion_svg(matrix),
    }
