"""The fraud detection run's summary: alerts per rule and the thresholds used, as Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime

from flows.core.artifacts import markdown_table
from flows.ml.fraud.rules import FraudRules


def summary_markdown(
    *,
    transactions: int,
    batches: int,
    since: datetime | None,
    source: str,
    counts: Mapping[str, int],
    rules: FraudRules,
) -> str:
    """Markdown: how much was scored from where, alerts per rule, and the rules' thresholds."""
    by_rule = [{"rule": rule, "alerts": n} for rule, n in sorted(counts.items())]
    return (
        f"# Fraud detection: {transactions} transactions in {batches} batch(es)\n\n"
        f"Since {since or 'the beginning'}, {source}.\n\n"
        + markdown_table(by_rule)
        + "\n\n## Rules\n\n"
        + markdown_table([{"rule": k, "value": str(v)} for k, v in asdict(rules).items()])
    )
