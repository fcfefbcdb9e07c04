"""Case 7 work: the same contract checked by its generated GX suite and by the compiled checks."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from bench.data import orders_with_violations
from flows.catalog import ORDERS


def gx_suite(params: dict[str, Any]) -> dict[str, Any]:
    """flows.core.quality.validate_dataframe: the contract's GX suite on a pandas frame."""
    from flows.core.quality import validate_dataframe

    orders = orders_with_violations(int(params["rows"]))
    started = perf_counter()
    results = validate_dataframe(ORDERS, orders)
    seconds = perf_counter() - started
    failed = sum(1 for result in results if not result.success)
    return {
        "seconds": seconds,
        "rows": orders.num_rows,
        "expectations": len(results),
        "failed_expectations": failed,
    }


def compiled_checks(params: dict[str, Any]) -> dict[str, Any]:
    """Table.split: the contract's checks compiled to Polars expressions, rejects with reasons."""
    orders = orders_with_violations(int(params["rows"]))
    started = perf_counter()
    _, rejects = ORDERS.split(orders)
    seconds = perf_counter() - started
    return {
        "seconds": seconds,
        "rows": orders.num_rows,
        "rejected_rows": rejects.num_rows,
        "checks": sum(len(check.violations()) for check in ORDERS.all_checks()),
    }
