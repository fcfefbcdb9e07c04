"""Great Expectations suites compiled from table contracts: the one place that imports GX.

One declaration, two compilers: `flows.core.checks` compiles a contract's checks to Polars
expressions for the quarantine split; this module compiles the same contract to a GX suite
(schema -> column existence and types, key -> uniqueness, each check -> its expectation) plus the
whole-table checks a per-row contract cannot say (row counts, distributions).

    results = validate_dataframe(ORDERS, frame)   # a plain function: suite on a DataFrame
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import polars as pl
import pyarrow as pa
from great_expectations.data_context.types.base import ProgressBarsConfig

from flows.core.checks import (
    Between,
    Check,
    Contains,
    Matches,
    MeanBetween,
    MedianBetween,
    NotNull,
    OneOf,
    TableCheck,
    Unique,
)
from flows.core.contracts import Table

Severity = Literal["critical", "warning"]
Frame: TypeAlias = "pd.DataFrame | pl.DataFrame | pa.Table"
DOCS_SITE = "lake_data_docs"
"""Our Data Docs site; the ephemeral context already owns `local_site` (a temporary folder)."""
_SEVERITY = "severity"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one table, as recorded in `_ops/quality_results`."""

    table: str
    check: str
    column: str | None
    severity: Severity
    success: bool
    observed: str = ""
    expected: str = ""
    unexpected_count: int | None = None
    element_count: int | None = None


def gx_type_name(arrow_type: pa.DataType) -> str | None:
    """The type name GX's pandas type check accepts for a column `pandas_frame` converted."""
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "str"
    if pa.types.is_timestamp(arrow_type):
        return "Timestamp" if arrow_type.tz else "datetime64"
    if pa.types.is_date(arrow_type):
        return "datetime64"
    return None


def pandas_frame(frame: Frame) -> pd.DataFrame:
    """A pandas frame for GX: Arrow-backed columns (nullable ints stay ints), numpy datetimes."""
    if isinstance(frame, pd.DataFrame):
        return frame
    arrow = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame

    def mapper(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
        temporal = pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type)
        return None if temporal else pd.ArrowDtype(arrow_type)

    converted: pd.DataFrame = arrow.to_pandas(types_mapper=mapper, date_as_object=False)
    return converted


def _meta(severity: Severity) -> dict[str, Any]:
    return {_SEVERITY: severity}


def check_expectations(check: Check) -> list[gxe.Expectation]:
    """The GX expectations equivalent to one contract check (same semantics as its Polars form)."""
    match check:
        case NotNull(columns=columns):
            return [
                gxe.ExpectColumnValuesToNotBeNull(column=column, meta=_meta("critical"))
                for column in columns
            ]
        case Between(column=column, low=low, high=high):
            return [
                gxe.ExpectColumnValuesToBeBetween(
                    column=column, min_value=low, max_value=high, meta=_meta("warning")
                )
            ]
        case OneOf(column=column, values=values):
            return [
                gxe.ExpectColumnValuesToBeInSet(
                    column=column, value_set=sorted(values), meta=_meta("warning")
                )
            ]
        case Matches(column=column, pattern=pattern):
            return [
                gxe.ExpectColumnValuesToMatchRegex(
                    column=column, regex=pattern, meta=_meta("warning")
                )
            ]


def schema_expectations(schema: pa.Schema) -> list[gxe.Expectation]:
    """Each contract column exists and has the contract's type."""
    found: list[gxe.Expectation] = []
    for field in schema:
        found.append(gxe.ExpectColumnToExist(column=field.name, meta=_meta("critical")))
        type_name = gx_type_name(field.type)
        if type_name is not None:
            found.append(
                gxe.ExpectColumnValuesToBeOfType(
                    column=field.name, type_=type_name, meta=_meta("critical")
                )
            )
    return found


def key_expectations(key: tuple[str, ...]) -> list[gxe.Expectation]:
    """The key is unique (not-null comes with the required columns' check)."""
    if not key:
        return []
    if len(key) == 1:
        return [gxe.ExpectColumnValuesToBeUnique(column=key[0], meta=_meta("critical"))]
    return [gxe.ExpectCompoundColumnsToBeUnique(column_list=list(key), meta=_meta("critical"))]


def contract_expectations(table: Table) -> list[gxe.Expectation]:
    """Everything the contract says, as GX expectations."""
    schema = schema_expectations(table.schema) if table.schema is not None else []
    checks = [e for check in table.all_checks() for e in check_expectations(check)]
    return [*schema, *key_expectations(table.key), *checks]


def table_check_expectations(check: TableCheck) -> list[gxe.Expectation]:
    """The GX expectation for one whole-table check, always a warning."""
    match check:
        case Unique(column=column):
            return [gxe.ExpectColumnValuesToBeUnique(column=column, meta=_meta("warning"))]
        case MeanBetween(column=column, low=low, high=high):
            return [
                gxe.ExpectColumnMeanToBeBetween(
                    column=column, min_value=low, max_value=high, meta=_meta("warning")
                )
            ]
        case MedianBetween(column=column, low=low, high=high):
            return [
                gxe.ExpectColumnMedianToBeBetween(
                    column=column, min_value=low, max_value=high, meta=_meta("warning")
                )
            ]
        case Contains(column=column, values=values):
            return [
                gxe.ExpectColumnDistinctValuesToContainSet(
                    column=column, value_set=sorted(values), meta=_meta("warning")
                )
            ]


def monitor_expectations(table: Table) -> list[gxe.Expectation]:
    """What a per-row contract cannot say: the table is not empty, plus its monitor checks.

    An empty quarantine is good news, so only other layers must hold rows.
    """
    not_empty = (
        []
        if table.layer == "quarantine"
        else [gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta("critical"))]
    )
    declared = [
        expectation
        for check in table.monitor_checks
        for expectation in (
            table_check_expectations(check)
            if isinstance(check, TableCheck)
            else check_expectations(check)
        )
    ]
    return [*not_empty, *declared]


def suite_name(table: Table) -> str:
    return table.path.replace("/", ".")


def build_suite(table: Table) -> gx.ExpectationSuite:
    """The table's GX suite: the contract compiled, then its monitor checks."""
    return gx.ExpectationSuite(
        name=suite_name(table),
        expectations=[*contract_expectations(table), *monitor_expectations(table)],
        meta={"generated_from": f"the catalog's contract for {table.path}"},
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _expected(kwargs: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k not in ("column", "batch_id") and v is not None}
    return ", ".join(f"{k}={_text(v)}" for k, v in sorted(shown.items()))


def _shows_personal(table: Table, kwargs: Mapping[str, Any]) -> bool:
    columns = {kwargs.get("column"), *(kwargs.get("column_list") or ())}
    return bool(columns & set(table.personal))


def check_results(table: Table, validation: Any) -> list[CheckResult]:
    """One CheckResult per expectation in a GX validation result."""
    found = []
    for outcome in validation.results:
        config = outcome.expectation_config
        result: Mapping[str, Any] = outcome.result or {}
        error = (outcome.exception_info or {}).get("exception_message")
        observed = result.get("observed_value")
        if _shows_personal(table, config.kwargs):
            observed = None
        elif observed is None and result.get("partial_unexpected_list"):
            observed = result["partial_unexpected_list"][:5]
        found.append(
            CheckResult(
                table=table.path,
                check=config.type,
                column=config.kwargs.get("column")
                or ",".join(config.kwargs.get("column_list") or ())
                or None,
                severity=(config.meta or {}).get(_SEVERITY, "warning"),
                success=bool(outcome.success),
                observed=_text(error or observed),
                expected=_expected(config.kwargs),
                unexpected_count=result.get("unexpected_count"),
                element_count=result.get("element_count"),
            )
        )
    return found


class QualityContext:
    """An ephemeral GX context with our Data Docs site in a temporary folder.

    Validate tables one at a time through a checkpoint each, then `build_docs()` renders every
    validation of this context into the site folder (to be copied beside the lake).
    """

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="lake-data-docs-")
        self.docs_folder = Path(self._folder.name)
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.context.add_data_docs_site(
            DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(self.docs_folder),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        self._source = self.context.data_sources.add_pandas("lake")

    def validate(self, table: Table, frame: Frame) -> list[CheckResult]:
        """Run the table's generated suite on `frame` through a checkpoint."""
        name = suite_name(table)
        batch = self._source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = self.context.suites.add(build_suite(table))
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                result_format={
                    "result_format": "SUMMARY",
                    # Data Docs would show sample values of personal columns: none then.
                    "partial_unexpected_count": 0 if table.personal else 5,
                },
            )
        )
        run = checkpoint.run(batch_parameters={"dataframe": pandas_frame(frame)})
        return [r for result in run.run_results.values() for r in check_results(table, result)]

    def build_docs(self) -> Path:
        """Render the site; returns the folder holding `index.html`."""
        self.context.build_data_docs(site_names=[DOCS_SITE])
        return self.docs_folder

    def close(self) -> None:
        self._folder.cleanup()


def validate_dataframe(table: Table, frame: Frame) -> list[CheckResult]:
    """Run `table`'s generated GX suite on a DataFrame; one result per expectation."""
    quality = QualityContext()
    try:
        return quality.validate(table, frame)
    finally:
        quality.close()
