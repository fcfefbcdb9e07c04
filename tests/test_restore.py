"""Undoing a bad load: restore a table, recorded with who and why, never past an erasure; then a
contract fix and a replay from bronze give the tables a clean run gives."""

import dataclasses
from datetime import UTC, datetime

import polars as pl
import pytest

import flows.catalog
from flows import samples
from flows.catalog import ERASURES, LANDING_FILES, ORDERS
from flows.core import lake, storage
from flows.core.checks import Between, between
from flows.core.errors import ConfigurationError
from flows.etl.s3_data_pipeline import s3_data_pipeline
from flows.restore import RESTORE_REASON, RESTORED_BY, main, restore_problem, restore_table

HEADER = "order_id,customer_id,product_id,quantity,amount,status,order_date,updated_at\n"
GOOD = HEADER + "".join(
    f"{i},1,1,1,{10 + i}.0,placed,2024-01-02,2024-01-02T00:00:00+00:00\n" for i in range(1, 6)
)
BAD = HEADER + "".join(  # amounts in cents by mistake: in range for today's contract
    f"{i},1,1,1,{(10 + i) * 100}.0,placed,2024-01-02,2024-01-03T00:00:00+00:00\n"
    for i in range(4, 9)
)


@pytest.mark.parametrize(
    ("current", "target", "erased_at", "problem"),
    [(5, 3, None, None), (5, 3, 2, None), (5, 3, 4, "older than the erasure recorded at version 4"),
     (5, 5, None, "not an earlier version"), (5, -1, None, "not an earlier version")],
)  # fmt: skip
def test_restore_problem(current, target, erased_at, problem):
    found = restore_problem(current, target, erased_at)
    assert (found is None) if problem is None else (problem in found)


def test_restore_goes_back_in_one_commit_that_says_who_and_why(local_lake):
    lake.merge(ORDERS, samples.orders(20))
    before = lake.read(ORDERS).sort("order_id")
    lake.merge(ORDERS, samples.orders(30, seed=3))

    main(["silver/orders", "--version", "1", "--by", "alice", "--reason", "bad load"])

    assert lake.read(ORDERS).sort("order_id").equals(before)
    newest = lake.history(ORDERS, limit=1)[0]
    assert (newest["operation"], newest[RESTORED_BY], newest[RESTORE_REASON]) == (
        "RESTORE", "alice", "bad load")  # fmt: skip


def test_restore_refuses_to_go_back_past_an_erasure(local_lake, capsys):
    lake.merge(ORDERS, samples.orders(20))
    lake.merge(ORDERS, samples.orders(30, seed=3))
    lake.append(ERASURES, pl.DataFrame({
        "erasure_id": ["e1"], "table": [ORDERS.path], "subject_ref": ["x"], "requested_by": ["dpo"],
        "request_ref": [""], "rows_deleted": [1], "files_removed": [1], "table_version": [2],
        "run_id": ["r"], "erased_at": [datetime.now(UTC)], "kind": ["table"],
        "versions_deleted": [0], "copies_until": [None], "objects_checked": [9],
        "occurrences_left": [0], "verified": [True]},
        schema_overrides={"copies_until": pl.Datetime("us", "UTC")}))  # fmt: skip
    with pytest.raises(ConfigurationError, match="would bring erased rows back"):
        restore_table(ORDERS, to_version=1, by="alice", reason="oops")
    with pytest.raises(SystemExit) as exit_info:
        main(["silver/orders", "--version", "1", "--by", "alice", "--reason", "oops"])
    assert exit_info.value.code == 2
    assert "would bring erased rows back" in capsys.readouterr().err
    assert lake.version(ORDERS) == 2


def amount_at_most(limit):
    checks = [c for c in ORDERS.checks if not (isinstance(c, Between) and c.column == "amount")]
    return dataclasses.replace(ORDERS, checks=(*checks, between("amount", 0, limit)))


def with_orders_contract(monkeypatch, contract):
    catalog = tuple(contract if t.path == ORDERS.path else t for t in flows.catalog.CATALOG)
    monkeypatch.setattr(flows.catalog, "CATALOG", catalog)


def test_bad_load_restore_fix_replay_equals_a_clean_run(tmp_path, prefect_api, monkeypatch):
    monkeypatch.setenv("LAKE_URI", str(tmp_path / "clean"))
    with_orders_contract(monkeypatch, amount_at_most(1_000))
    storage.write_bytes("landing/orders/good.csv", GOOD.encode())
    storage.write_bytes("landing/orders/bad.csv", BAD.encode())
    s3_data_pipeline(sample_data=False)
    clean = lake.read(ORDERS).sort("order_id")

    monkeypatch.setenv("LAKE_URI", str(tmp_path / "repaired"))
    with_orders_contract(monkeypatch, ORDERS)
    storage.write_bytes("landing/orders/good.csv", GOOD.encode())
    s3_data_pipeline(sample_data=False)
    good_version = lake.version(ORDERS)
    storage.write_bytes("landing/orders/bad.csv", BAD.encode())
    s3_data_pipeline(sample_data=False)
    assert lake.read(ORDERS)["amount"].max() == 1_800.0  # the bad load is in silver

    restore_table(ORDERS, to_version=good_version, by="alice", reason="amounts in cents")
    with_orders_contract(monkeypatch, amount_at_most(1_000))
    s3_data_pipeline(sample_data=False, reconform="all")

    assert lake.read(ORDERS).sort("order_id").equals(clean)
    assert lake.read(ORDERS.quarantine).height == 5
    manifest = lake.read(LANDING_FILES).sort("source_file")
    assert manifest.select("source_file", "status", "quarantined").rows() == [
        ("landing/orders/bad.csv", "done", 5), ("landing/orders/good.csv", "done", 0)]  # fmt: skip
