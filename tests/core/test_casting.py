"""Lossless casting under the contract: every rule both ways, then a pandas CSV end to end."""

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from flows.catalog import ORDERS
from flows.core import lake, storage
from flows.core.casting import cast_columns, cast_series
from flows.core.contracts import REASON_COLUMN, Table
from flows.etl.s3_pipeline.layers import conform_file, ingest_file
from flows.etl.s3_pipeline.transforms import landing_files

INT = pl.Int64
DATETIME = pl.Datetime("us", "UTC")
PLUS_TWO = timezone(timedelta(hours=2))


def at(*parts, tz=UTC):
    return datetime(*parts, tzinfo=tz)


@pytest.mark.parametrize(
    ("target", "text", "expected"),
    [
        (INT, "517", 517),
        (INT, "517.0", 517),
        (INT, "517.00", 517),
        (INT, "-3.0", -3),
        (INT, "-3.", -3),
        (INT, " 42 ", 42),
        (INT, "1e3", 1000),
        (INT, "2.5E1", 25),
        (INT, "9223372036854775807", 2**63 - 1),
        (INT, "9007199254740993.0", 2**53 + 1),
        (pl.Int32, "7.0", 7),
        (pl.Float64, "517.5", 517.5),
        (pl.Float64, " 1e3 ", 1000.0),
        (pl.Boolean, "true", True),
        (pl.Boolean, "FALSE", False),
        (pl.Boolean, " Yes ", True),
        (pl.Boolean, "no", False),
        (pl.Boolean, "1", True),
        (pl.Boolean, "0", False),
        (pl.Boolean, "T", True),
        (pl.Boolean, "f", False),
        (pl.Boolean, "y", True),
        (pl.Boolean, "N", False),
        (DATETIME, "2024-01-02T10:00:00Z", at(2024, 1, 2, 10)),
        (DATETIME, "2024-01-02 10:00:00Z", at(2024, 1, 2, 10)),
        (DATETIME, "2024-01-02T10:00:00+02:00", at(2024, 1, 2, 8)),
        (DATETIME, "2024-01-02 10:00:00+0200", at(2024, 1, 2, 8)),
        (DATETIME, "2024-01-02T10:00:00-05:30", at(2024, 1, 2, 15, 30)),
        (DATETIME, "2024-01-02T10:00:00", at(2024, 1, 2, 10)),
        (DATETIME, "2024-01-02 10:00:00", at(2024, 1, 2, 10)),
        (DATETIME, "2024-01-02T10:00:00.123456Z", at(2024, 1, 2, 10, 0, 0, 123456)),
        (DATETIME, "2024-01-02 10:00:00.5", at(2024, 1, 2, 10, 0, 0, 500000)),
        (DATETIME, "2024-01-02 10:00:00.000000000", at(2024, 1, 2, 10)),
        (DATETIME, "2024-01-02T10:00Z", at(2024, 1, 2, 10)),
        (DATETIME, " 2024-01-02T10:00:00Z ", at(2024, 1, 2, 10)),
        (DATETIME, "2024-01-02", at(2024, 1, 2)),
        (pl.Datetime("us", "Europe/Paris"), "2024-01-02T10:00:00", None),  # checked below
        (pl.Date, "2024-01-02", date(2024, 1, 2)),
        (pl.Date, " 2024-01-02 ", date(2024, 1, 2)),
        (pl.Date, "2024-01-02T00:00:00", date(2024, 1, 2)),
        (pl.Date, "2024-01-02 00:00:00.000000000", date(2024, 1, 2)),
        (pl.Date, "2024-01-02T00:00:00Z", date(2024, 1, 2)),
        (pl.Date, "2024-01-02 00:00:00+00:00", date(2024, 1, 2)),
    ],
)
def test_a_lossless_text_value_is_cast(target, text, expected):
    if expected is None:  # no offset: the contract's own zone, here Paris (UTC+1 in January)
        expected = datetime(2024, 1, 2, 9, tzinfo=UTC)
    value = cast_series(pl.Series("x", [text]), target).item()
    assert value == expected


@pytest.mark.parametrize(
    ("target", "text"),
    [
        (INT, "517.5"),
        (INT, "517.0000000000000001"),
        (INT, "1.5e0"),
        (INT, "1e20"),
        (INT, "9223372036854775808"),
        (INT, "9223372036854775808.0"),
        (INT, "0x10"),
        (INT, "1_000"),
        (INT, "twelve"),
        (INT, ""),
        (pl.Int32, "2147483648"),
        (pl.Float64, "twelve"),
        (pl.Boolean, "maybe"),
        (pl.Boolean, "2"),
        (pl.Boolean, "yess"),
        (DATETIME, "yesterday"),
        (DATETIME, "2024-13-01T10:00:00Z"),
        (DATETIME, "2024-01-02T25:00:00Z"),
        (DATETIME, "2024-01-02T10:00:00.1234567Z"),
        (DATETIME, "01/02/2024 10:00"),
        (DATETIME, "2024-01-02T10:00:00 Europe/Paris"),
        (pl.Date, "2024-13-01"),
        (pl.Date, "2024-02-30"),
        (pl.Date, "2024-01-02T10:00:00"),
        (pl.Date, "2024-01-02T00:00:01"),
        (pl.Date, "2024-01-02T00:00:00.5"),
        (pl.Date, "2024-01-02T00:00:00+02:00"),
        (pl.Date, "02/01/2024"),
    ],
)
def test_a_value_that_would_lose_information_is_not_cast(target, text):
    assert cast_series(pl.Series("x", [text]), target).item() is None


@pytest.mark.parametrize(
    ("source", "values", "target", "expected"),
    [
        (pl.Float64, [517.0, -3.0, None], INT, [517, -3, None]),
        (pl.Float64, [517.5, float("nan"), float("inf"), 1e20], INT, [None] * 4),
        (INT, [5, 2**53], pl.Float64, [5.0, float(2**53)]),
        (INT, [2**53 + 1], pl.Float64, [None]),
        (INT, [1, 0, 2], pl.Boolean, [True, False, None]),
        (INT, [2**31], pl.Int32, [None]),
        (pl.Float32, [1.5], pl.Float64, [1.5]),
        (pl.Datetime("us"), [datetime(2024, 1, 2, 10)], DATETIME, [at(2024, 1, 2, 10)]),
        (pl.Datetime("us"), [datetime(2024, 1, 2), datetime(2024, 1, 2, 10)], pl.Date,
         [date(2024, 1, 2), None]),
        (pl.Date, [date(2024, 1, 2)], DATETIME, [at(2024, 1, 2)]),
        (pl.Datetime("ns"), [datetime(2024, 1, 2, 10)], DATETIME, [at(2024, 1, 2, 10)]),
        (INT, [7], pl.String, ["7"]),
    ],
)  # fmt: skip
def test_a_typed_column_is_cast_only_where_the_value_survives(source, values, target, expected):
    assert cast_series(pl.Series("x", values, dtype=source), target).to_list() == expected


def test_nanoseconds_finer_than_the_contract_are_not_dropped_silently():
    nanos = pl.Series("x", [1_000, 1_001], dtype=pl.Int64).cast(pl.Datetime("ns"))
    assert cast_series(nanos, DATETIME).to_list() == [at(1970, 1, 1, 0, 0, 0, 1), None]


def test_a_column_written_several_ways_is_read_row_by_row():
    texts = ["2024-01-02T10:00:00+02:00", "2024-01-02 08:00:00Z", "2024-01-02 08:00", None, "x"]
    values = cast_series(pl.Series("x", texts), DATETIME).to_list()
    assert values == [at(2024, 1, 2, 8)] * 3 + [None, None]
    mixed = cast_series(pl.Series("x", ["1.0", "2", "3e0", "4.5", None]), INT)
    assert mixed.to_list() == [1, 2, 3, None, None]


def test_cast_columns_keeps_the_target_schema_and_order():
    raw = pl.DataFrame({"b": ["yes", "n"], "a": ["1.0", "2"], "extra": ["x", "y"]})
    target = pl.Schema({"a": INT, "b": pl.Boolean})
    assert cast_columns(raw, target).to_dict(as_series=False) == {
        "a": [1, 2],
        "b": [True, False],
    }


FLAGS = Table(
    "flags",
    "silver",
    pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            ("active", pa.bool_()),
            ("day", pa.date32()),
            ("seen_at", pa.timestamp("us", tz="UTC")),
        ]
    ),
    key=("id",),
)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("id", "517.5", "id: not a valid Int64"),
        ("id", "99999999999999999999", "id: not a valid Int64"),
        ("active", "maybe", "active: not a valid Boolean"),
        ("day", "2024-13-01", "day: not a valid Date"),
        ("day", "2024-01-02T10:00:00", "day: not a valid Date"),
        ("seen_at", "2024-01-02T10:00:00+25:00", "seen_at: not a valid Datetime"),
    ],
)
def test_split_quarantines_a_lossy_value_with_its_reason(column, value, reason):
    good = {"id": "1.0", "active": " TRUE ", "day": "2024-01-02", "seen_at": "2024-01-02 10:00:00Z"}
    bad = {**good, "id": "2", column: value}
    batch = pa.table({name: pa.array([good[name], bad[name]], pa.string()) for name in good})
    valid, rejects = FLAGS.split(batch)
    assert valid.to_pylist() == [
        {"id": 1, "active": True, "day": date(2024, 1, 2), "seen_at": at(2024, 1, 2, 10)}
    ]
    assert rejects.column(REASON_COLUMN).to_pylist()[0].startswith(reason)
    assert rejects.column(column).to_pylist() == [value]


def test_split_casts_a_typed_parquet_like_batch_losslessly():
    batch = pa.table(
        {
            "id": pa.array([1.0, 2.5, 3.0]),
            "active": pa.array([1, 0, 1]),
            "day": pa.array([datetime(2024, 1, 2)] * 3, pa.timestamp("ns")),
            "seen_at": pa.array([date(2024, 1, 2)] * 3),
        }
    )
    valid, rejects = FLAGS.split(batch)
    assert valid.column("id").to_pylist() == [1, 3]
    assert valid.column("active").to_pylist() == [True, True]
    assert valid.column("seen_at").to_pylist() == [at(2024, 1, 2)] * 2
    assert rejects.column("id").to_pylist() == ["2.5"]
    assert rejects.column(REASON_COLUMN)[0].as_py().startswith("id: not a valid Int64")


def test_a_pandas_csv_with_nullable_integers_lands_every_row_in_silver(local_lake):
    rng = np.random.default_rng(16)
    rows = 500
    frame = pd.DataFrame(
        {
            "order_id": np.arange(1, rows + 1),
            "customer_id": pd.array(rng.integers(1, 50, rows), dtype="Int64"),
            # float64 with NaN: pandas writes 517.0, the way a nullable integer column leaves it
            "product_id": np.where(rng.random(rows) < 0.2, np.nan, rng.integers(1, 900, rows)),
            "quantity": pd.array(rng.integers(1, 9, rows), dtype="Int64"),
            "amount": rng.integers(100, 90_000, rows) / 100,
            "status": "placed",
            "order_date": pd.Timestamp("2024-03-01")
            + pd.to_timedelta(rng.integers(0, 5, rows), "D"),
            "updated_at": pd.Timestamp("2024-03-05 10:00", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10**6, rows), "s"),
        }
    )
    frame.loc[::7, "quantity"] = pd.NA
    written = frame.to_csv(index=False)
    product_ids = [line.split(",")[2] for line in written.splitlines()[1:]]
    assert "" in product_ids
    assert all(p == "" or p.endswith(".0") for p in product_ids)
    storage.write_bytes("landing/orders/pandas.csv", written.encode())

    files, _ = landing_files(storage.describe_objects("landing"), "landing", {"orders": ORDERS})
    landed = ingest_file(files[0], run_id="r1")
    assert landed.status == "bronze"
    assert landed.rows == rows
    conformed = conform_file(landed.file)
    assert (conformed.valid, conformed.quarantined) == (rows, 0)

    silver = lake.read(ORDERS).sort("order_id")
    assert silver.height == rows
    expected = pl.from_pandas(frame.astype({"product_id": "Int64"}))
    assert silver["product_id"].to_list() == expected["product_id"].to_list()
    assert silver["quantity"].to_list() == expected["quantity"].to_list()
    assert silver["updated_at"].to_list() == expected["updated_at"].to_list()
    assert silver["order_date"].to_list() == expected["order_date"].dt.date().to_list()


USUAL_SHAPE = [
    "2024-01-02T10:00:00Z",
    "2024-01-02 10:00:00.5+02:00",
    "2024-02-29T23:59:59.123456-05:30",
]


def test_timestamps_in_the_usual_shape_read_as_the_format_readers_read_them():
    utc = pl.Datetime("us", "UTC")
    by_arrow = cast_series(pl.Series(USUAL_SHAPE), utc)
    # a value outside the shape sends the whole column to the format readers
    by_formats = cast_series(pl.Series([*USUAL_SHAPE, "2024-01-02T10:00"]), utc)
    assert by_arrow.null_count() == 0
    assert by_arrow.to_list() == by_formats.to_list()[:3]


@pytest.mark.parametrize(
    "bad", ["2024-02-30T10:00:00Z", "2024-01-02T10:00:00.1234567Z", "2024-01-02T25:00:00Z"]
)
def test_a_bad_timestamp_among_usual_ones_is_the_only_one_rejected(bad):
    read = cast_series(pl.Series([USUAL_SHAPE[0], bad]), pl.Datetime("us", "UTC"))
    assert read.is_null().to_list() == [False, True]
