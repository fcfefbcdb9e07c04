"""The catalog: every category's declarations, and one list of the physical tables they imply."""

import importlib

import pytest

from flows.catalog import (
    CATALOG,
    EVENTS,
    LATE_EVENTS,
    ORDERS,
    ingested_table,
    physical_table,
    physical_tables,
    selected_tables,
)
from flows.core.contracts import SOURCE_KINDS, Table
from flows.core.errors import ConfigurationError

CATEGORIES = ("examples", "etl", "ml", "monitoring")


def declared_in(category: str) -> list[Table]:
    module = importlib.import_module(f"flows.{category}.tables")
    return [value for value in vars(module).values() if isinstance(value, Table)]


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_table_a_category_declares_is_in_the_catalog(category):
    declared = declared_in(category)
    assert declared, f"flows/{category}/tables.py declares no table"
    assert [t.path for t in declared if t not in CATALOG] == []


def test_catalog_lists_each_declaration_once():
    paths = [table.path for table in CATALOG]
    assert len(paths) == len(set(paths))
    assert len(CATALOG) == sum(len(declared_in(category)) for category in CATEGORIES)


def test_physical_tables_are_unique_and_include_every_declaration():
    paths = [table.path for table in physical_tables()]
    assert len(paths) == len(set(paths))
    assert {t.path for t in CATALOG} <= set(paths)


def test_an_ingested_table_has_bronze_per_source_and_a_quarantine():
    paths = {t.path for t in ORDERS.physical_tables()}
    expected = {"silver/orders", "bronze/orders", "quarantine/orders"}
    assert paths == expected | {f"bronze/orders_{kind}" for kind in SOURCE_KINDS}
    assert "bronze/orders_api" in paths


def test_only_ingested_tables_imply_copies():
    copies = {t.path for t in physical_tables()} - {t.path for t in CATALOG}
    owners = {path.split("/")[1].removesuffix("_api").removesuffix("_postgres") for path in copies}
    assert owners == {t.name for t in CATALOG if t.ingested}
    for absent in ("bronze/customer_lifetime_value", "quarantine/model_registry",
                   "bronze/quality_results", "bronze/example_daily_order_totals"):  # fmt: skip
        assert absent not in {t.path for t in physical_tables()}


def test_an_unknown_table_is_refused_with_the_known_ones():
    with pytest.raises(ConfigurationError, match=r"unknown table 'silver/nope'.*bronze/orders_api"):
        physical_table("silver/nope")


def test_selection_is_every_physical_table_or_the_named_ones_once():
    assert selected_tables(None) == list(physical_tables())
    named = selected_tables(["bronze/orders_api", "silver/orders", "bronze/orders_api"])
    assert [t.path for t in named] == ["bronze/orders_api", "silver/orders"]


def test_ingested_table_names_the_tables_raw_deliveries_feed():
    assert ingested_table("orders") is ORDERS
    with pytest.raises(ConfigurationError, match="not fed by raw deliveries"):
        ingested_table("daily_order_totals")


def test_every_table_holding_an_email_declares_it_identifying_and_its_raw_copies_inherit():
    with_email = [t for t in physical_tables() if t.schema and "email" in t.schema.names]
    assert with_email
    for table in with_email:
        assert "email" in table.identifying, table.path
        for raw in table.physical_tables()[1:]:
            assert (raw.personal, raw.identifying) == (table.personal, table.identifying)


def test_late_events_keep_the_columns_of_events():
    late = {f.name: f.type for f in LATE_EVENTS.schema}
    assert all(late.get(f.name) == f.type for f in EVENTS.schema)
