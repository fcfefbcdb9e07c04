"""Quarantine rows are marked resolved when their key later lands valid: the rule on tiny frames,
the MERGE on a quarantine table written before the columns existed, and a pipeline run."""

from datetime import UTC, datetime

import polars as pl
import pyarrow as pa

from flows.catalog import ORDERS
from flows.core import lake, storage
from flows.core.quarantine import (
    RESOLVED_AT_COLUMN,
    RESOLVED_BY_COLUMN,
    RejectCounts,
    reject_counts,
)
from flows.etl.s3_data_pipeline import s3_data_pipeline
from flows.etl.s3_pipeline.resolution import (
    REPLAYED,
    replayed_rejects,
    resolutions,
    typed_rejects,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2024, 1, 2, tzinfo=UTC)
AT = datetime(2024, 1, 3, tzinfo=UTC)
HEADER = "order_id,customer_id,product_id,quantity,amount,status,order_date,updated_at\n"


def rejects(*rows):
    frame = pl.DataFrame(
        rows, schema={"order_id": pl.String, "_batch_id": pl.String,
                      "_ingested_at": pl.Datetime("us", "UTC")}, orient="row",
    )  # fmt: skip
    return typed_rejects(frame, ORDERS)


def landed(*rows):
    return pl.DataFrame(
        rows, schema={"order_id": pl.Int64, "_source": pl.String, "_batch_id": pl.String,
                      "_ingested_at": pl.Datetime("us", "UTC"), REPLAYED: pl.Boolean},
        orient="row",
    )  # fmt: skip


def test_a_later_delivery_with_the_key_valid_resolves_the_reject():
    fixed = resolutions(rejects(("517.0", "a", T0)), landed((517, "b.csv", "b", T1, False)),
                        ORDERS.key, at=AT)  # fmt: skip
    assert fixed.rows(named=True) == [
        {"order_id": "517.0", "_batch_id": "a", RESOLVED_BY_COLUMN: "b.csv", RESOLVED_AT_COLUMN: AT}
    ]


def test_the_same_delivery_resolves_its_reject_only_when_replayed():
    same = landed((1, "a.csv", "a", T0, False))
    assert resolutions(rejects(("1", "a", T0)), same, ORDERS.key, at=AT).height == 0
    replay = same.with_columns(pl.lit(True).alias(REPLAYED))
    assert resolutions(rejects(("1", "a", T0)), replay, ORDERS.key, at=AT)[
        RESOLVED_BY_COLUMN
    ].to_list() == ["a.csv"]


def test_an_earlier_delivery_other_keys_and_uncastable_keys_resolve_nothing():
    found = resolutions(
        rejects(("1", "b", T1), ("x", "b", T1), (None, "b", T1)),
        landed((1, "a.csv", "a", T0, False), (2, "c.csv", "c", AT, False)),
        ORDERS.key,
        at=AT,
    )
    assert found.height == 0


def test_the_first_fixing_delivery_is_named():
    fixed = resolutions(
        rejects(("1", "a", T0)),
        landed((1, "c.csv", "c", AT, False), (1, "b.csv", "b", T1, False)),
        ORDERS.key,
        at=AT,
    )
    assert fixed[RESOLVED_BY_COLUMN].to_list() == ["b.csv"]


def test_a_replay_keeps_resolved_rows_keeps_passing_ones_open_and_renews_the_rest():
    old = pl.DataFrame(
        {"order_id": ["1", "2", "3"], "_reason": ["old"] * 3,
         RESOLVED_BY_COLUMN: ["x.csv", None, None], RESOLVED_AT_COLUMN: [AT, None, None]},
        schema_overrides={RESOLVED_AT_COLUMN: pl.Datetime("us", "UTC")},
    )  # fmt: skip
    new = pl.DataFrame({"order_id": ["1", "3"], "_reason": ["today", "today"]})
    rows = replayed_rejects(old, new, ORDERS.key).sort("order_id")
    assert rows.select("order_id", "_reason", RESOLVED_BY_COLUMN).rows() == [
        ("1", "old", "x.csv"),
        ("2", "old", None),
        ("3", "today", None),
    ]


def test_resolution_adds_its_columns_to_a_quarantine_table_written_before_them(local_lake):
    quarantine = ORDERS.quarantine
    lake.append(quarantine, pa.table({"order_id": ["1", "2"], "_batch_id": ["a", "a"],
                                      "_reason": ["bad", "bad"]}))  # fmt: skip
    assert reject_counts(lake.scan(quarantine)) == RejectCounts(open=2, resolved=0)
    fixed = pa.table({"order_id": ["2"], "_batch_id": ["a"], RESOLVED_BY_COLUMN: ["b.csv"],
                      RESOLVED_AT_COLUMN: pa.array([AT], pa.timestamp("us", "UTC"))})  # fmt: skip
    result = lake.update_matched(
        quarantine,
        fixed,
        on=["order_id", "_batch_id"],
        columns=[RESOLVED_BY_COLUMN, RESOLVED_AT_COLUMN],
    )
    assert (result.operation, result.updated) == ("MERGE", 1)
    assert lake.history(quarantine, limit=1)[0]["operation"] == "MERGE"
    table = lake.read(quarantine).sort("order_id")
    assert table[RESOLVED_BY_COLUMN].to_list() == [None, "b.csv"]
    assert reject_counts(lake.scan(quarantine)) == RejectCounts(open=1, resolved=1)


def test_a_later_delivery_resolves_the_quarantined_key_and_a_rerun_changes_nothing(
    local_lake, prefect_api
):
    storage.write_bytes(
        "landing/orders/2024-01-01.csv",
        (HEADER + "1,1,1,1,5.0,placed,2024-01-01,2024-01-01T00:00:00Z\n"
                  "2,1,1,1,-6.0,placed,2024-01-01,2024-01-01T00:00:00Z\n").encode(),
    )  # fmt: skip
    s3_data_pipeline(sample_data=False)
    assert reject_counts(lake.scan(ORDERS.quarantine)).open == 1
    storage.write_bytes(
        "landing/orders/2024-01-02.csv",
        (HEADER + "2,1,1,1,6.0,placed,2024-01-01,2024-01-02T00:00:00Z\n").encode(),
    )
    s3_data_pipeline(sample_data=False)
    row = lake.read(ORDERS.quarantine).row(0, named=True)
    assert row[RESOLVED_BY_COLUMN] == "landing/orders/2024-01-02.csv"
    assert row[RESOLVED_AT_COLUMN] is not None
    assert sorted(lake.read(ORDERS)["order_id"].to_list()) == [1, 2]
    version = lake.version(ORDERS.quarantine)
    s3_data_pipeline(sample_data=False)
    assert lake.version(ORDERS.quarantine) == version
