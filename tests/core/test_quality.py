"""The contract -> GX suite compiler: each check class maps to its expectation, and GX flags the
same rows as the compiled Polars checks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import great_expectations.expectations as gxe
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from flows import samples
from flows.catalog import CATALOG, ORDERS
from flows.core import quality
from flows.core.checks import between, matches, not_null, one_of
from flows.core.contracts import Table
from flows.core.quality import (
    build_suite,
    check_expectations,
    gx_type_name,
    key_expectations,
    pandas_frame,
    schema_expectations,
    validate_dataframe,
)

TINY = Table(
    "tiny",
    layer="silver",
    schema=pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            ("amount", pa.float64()),
            ("status", pa.string()),
            ("code", pa.string()),
        ]
    ),
    key=("id",),
    checks=(
        between("amount", 0, 100),
        one_of("status", {"a", "b"}),
        matches("code", r"^[A-Z]{2}$"),
    ),
)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (not_null("a", "b"), [(gxe.ExpectColumnValuesToNotBeNull, {"column": "a"}),
                              (gxe.ExpectColumnValuesToNotBeNull, {"column": "b"})]),
        (between("x", 0, 5), [(gxe.ExpectColumnValuesToBeBetween,
                               {"column": "x", "min_value": 0, "max_value": 5})]),
        (between("x", 0, None), [(gxe.ExpectColumnValuesToBeBetween,
                                  {"column": "x", "min_value": 0, "max_value": None})]),
        (one_of("s", {"b", "a"}), [(gxe.ExpectColumnValuesToBeInSet,
                                    {"column": "s", "value_set": ["a", "b"]})]),
        (matches("c", "^x+$"), [(gxe.ExpectColumnValuesToMatchRegex,
                                 {"column": "c", "regex": "^x+$"})]),
    ],
)  # fmt: skip
def test_each_check_class_maps_to_its_expectation(check, expected):
    compiled = check_expectations(check)
    assert [type(e) for e in compiled] == [kind for kind, _ in expected]
    for expectation, (_, fields) in zip(compiled, expected, strict=True):
        for name, value in fields.items():
            assert getattr(expectation, name) == value


@pytest.mark.parametrize(
    ("check", "severity"),
    [(not_null("a"), "critical"), (between("x", 0, 1), "warning"),
     (one_of("s", {"a"}), "warning"), (matches("c", "x"), "warning")],
)  # fmt: skip
def test_missing_values_in_required_columns_are_critical_value_checks_are_warnings(check, severity):
    assert {e.meta["severity"] for e in check_expectations(check)} == {severity}


@pytest.mark.parametrize(
    ("arrow_type", "name"),
    [(pa.int64(), "int"), (pa.int32(), "int"), (pa.float64(), "float"), (pa.string(), "str"),
     (pa.large_string(), "str"), (pa.bool_(), "bool"), (pa.date32(), "datetime64"),
     (pa.timestamp("us", tz="UTC"), "Timestamp"), (pa.timestamp("us"), "datetime64"),
     (pa.list_(pa.int64()), None)],
)  # fmt: skip
def test_gx_type_name(arrow_type, name):
    assert gx_type_name(arrow_type) == name


def test_schema_compiles_to_existence_and_type_per_column():
    compiled = schema_expectations(pa.schema([("a", pa.int64()), ("l", pa.list_(pa.int64()))]))
    assert [(type(e), e.column) for e in compiled] == [
        (gxe.ExpectColumnToExist, "a"),
        (gxe.ExpectColumnValuesToBeOfType, "a"),
        (gxe.ExpectColumnToExist, "l"),
    ]


@pytest.mark.parametrize(
    ("key", "kind"),
    [(("id",), gxe.ExpectColumnValuesToBeUnique),
     (("day", "status"), gxe.ExpectCompoundColumnsToBeUnique), ((), None)],
)  # fmt: skip
def test_key_compiles_to_uniqueness(key, kind):
    compiled = key_expectations(key)
    assert [type(e) for e in compiled] == ([kind] if kind else [])


@pytest.mark.parametrize("table", CATALOG, ids=lambda t: t.path)
def test_every_catalog_table_compiles_to_a_suite(table):
    suite = build_suite(table)
    kinds = {e.expectation_type for e in suite.expectations}
    assert ("expect_table_row_count_to_be_between" in kinds) == (table.layer != "quarantine")
    existing = {
        e.column for e in suite.expectations if e.expectation_type == "expect_column_to_exist"
    }
    assert existing == set(table.schema.names)


def test_pandas_frame_keeps_nullable_integers_and_converts_temporals():
    frame = pandas_frame(
        pa.table(
            {
                "i": pa.array([1, None], pa.int64()),
                "d": pa.array([date(2024, 1, 1), None], pa.date32()),
                "t": pa.array([datetime(2024, 1, 1, tzinfo=UTC), None], pa.timestamp("us", "UTC")),
            }
        )
    )
    assert str(frame["i"].dtype) == "int64[pyarrow]"
    assert frame["d"].dtype.kind == "M"
    assert isinstance(frame["t"].dtype, pd.DatetimeTZDtype)


def test_valid_sample_orders_pass_the_whole_suite():
    results = validate_dataframe(ORDERS, pl.from_arrow(samples.orders(300)))
    assert [r for r in results if not r.success] == []
    assert len(results) == len(build_suite(ORDERS).expectations)


def _failures(results):
    return {(r.check, r.column): r for r in results if not r.success}


def test_planted_problems_fail_the_matching_expectations():
    frame = pl.DataFrame(
        {
            "id": [1, 2, 2, None],
            "amount": [5.0, 500.0, 1.0, 2.0],
            "status": ["a", "b", "zzz", "a"],
            "code": ["AB", "abc", "CD", None],
        }
    )
    failures = _failures(validate_dataframe(TINY, frame))
    assert set(failures) == {
        ("expect_column_values_to_not_be_null", "id"),
        ("expect_column_values_to_be_unique", "id"),
        ("expect_column_values_to_be_between", "amount"),
        ("expect_column_values_to_be_in_set", "status"),
        ("expect_column_values_to_match_regex", "code"),
    }
    assert failures[("expect_column_values_to_be_between", "amount")].unexpected_count == 1
    assert failures[("expect_column_values_to_not_be_null", "id")].severity == "critical"
    assert "500" in failures[("expect_column_values_to_be_between", "amount")].observed


def test_dropped_column_and_wrong_type_fail_the_schema_expectations():
    frame = pl.DataFrame({"id": ["1", "2"], "amount": [1.0, 2.0], "status": ["a", "b"]})
    failures = _failures(validate_dataframe(TINY, frame))
    assert ("expect_column_to_exist", "code") in failures
    assert failures[("expect_column_values_to_be_of_type", "id")].observed == "str"


def test_empty_table_fails_the_hand_written_row_count():
    failures = _failures(validate_dataframe(TINY, TINY.schema.empty_table()))
    assert failures[("expect_table_row_count_to_be_between", None)].severity == "critical"


def test_gx_flags_the_same_rows_as_the_compiled_polars_checks():
    """One declaration, two compilers: per check, the GX unexpected count equals the Polars one."""
    rows = samples.orders(400).to_pylist()
    for index in range(0, 400, 7):
        rows[index]["amount"] = -1.0
    for index in range(0, 400, 11):
        rows[index]["status"] = "lost"
    frame = pl.from_dicts(rows)
    gx_counts = {
        r.column: r.unexpected_count
        for r in validate_dataframe(ORDERS, frame)
        if r.check in ("expect_column_values_to_be_between", "expect_column_values_to_be_in_set")
    }
    polars_counts = {
        check.column: frame.select(
            pl.any_horizontal([c.fill_null(False) for c, _ in check.violations()]).sum()
        ).item()
        for check in ORDERS.checks
    }
    assert gx_counts == polars_counts
    assert polars_counts["amount"] == 58
    assert polars_counts["status"] == 37


def test_data_docs_site_is_ours_and_renders_every_validated_table(tmp_path):
    context = quality.QualityContext()
    try:
        context.validate(TINY, pl.DataFrame({"id": [1], "amount": [1.0], "status": ["a"],
                                             "code": ["AB"]}))  # fmt: skip
        folder = context.build_docs()
        sites = {s["site_name"] for s in context.context.get_docs_sites_urls()}
        assert quality.DOCS_SITE in sites
        assert quality.DOCS_SITE != "local_site"
        assert (folder / "index.html").is_file()
        assert "silver.tiny" in (folder / "index.html").read_text()
    finally:
        context.close()
