import random
from datetime import UTC, date, datetime

import polars as pl
import pyarrow as pa
import pytest

from flows.core.checks import between, matches, not_null, one_of, reason_expression
from flows.core.contracts import REASON_COLUMN, Table
from flows.core.errors import ContractViolation, UnsafePathError

ORDERS_LIKE = Table(
    "orders",
    "silver",
    pa.schema(
        [
            pa.field("order_id", pa.int64(), nullable=False),
            ("amount", pa.float64()),
            ("status", pa.string()),
            ("order_date", pa.date32()),
            ("updated_at", pa.timestamp("us", tz="UTC")),
        ]
    ),
    key=("order_id",),
    newest_by="updated_at",
    checks=(between("amount", 0, 100), one_of("status", {"placed", "shipped"})),
)


def raw(**columns):
    rows = len(next(iter(columns.values()), [None]))
    base = {
        "order_id": [str(i) for i in range(1, rows + 1)],
        "amount": ["1.5"] * rows,
        "status": ["placed"] * rows,
        "order_date": ["2024-01-01"] * rows,
        "updated_at": ["2024-01-01T00:00:00+00:00"] * rows,
    }
    base.update(columns)
    return pa.table({k: pa.array(v, pa.string()) for k, v in base.items()})


@pytest.mark.parametrize(
    ("check", "values", "violated"),
    [
        (not_null("x"), [1.0, None], [False, True]),
        (between("x", 0, 10), [-1.0, 0.0, 10.0, 11.0, None], [True, False, False, True, False]),
        (between("x", low=5), [4.0, 6.0], [True, False]),
        (one_of("x", {"a", "b"}), ["a", "c", None], [False, True, False]),
        (matches("x", r"^\d{3}$"), ["123", "12a", None], [False, True, False]),
    ],
)
def test_each_check_flags_exactly_the_violating_rows(check, values, violated):
    frame = pl.DataFrame({"x": values})
    reasons = frame.select(reason_expression(check.violations())).to_series().to_list()
    assert [reason is not None for reason in reasons] == violated


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("amount", "twelve", "amount: not a valid Float64"),
        ("order_id", None, "order_id: is null"),
        ("amount", "-3", "amount: below 0"),
        ("amount", "101", "amount: above 100"),
        ("status", "lost", "status: not one of placed, shipped"),
        ("order_date", "2024-13-01", "order_date: not a valid Date"),
        ("updated_at", "yesterday", "updated_at: not a valid Datetime"),
    ],
)
def test_split_sends_a_malformed_row_to_rejects_with_its_reason(column, value, reason):
    batch = raw(**{column: [raw(order_id=["1"]).column(column)[0].as_py(), value]})
    valid, rejects = ORDERS_LIKE.split(batch)
    assert valid.num_rows == 1
    assert rejects.num_rows == 1
    assert reason in rejects.column(REASON_COLUMN)[0].as_py()
    assert rejects.column(column)[0].as_py() == value  # the raw value is kept, not lost


def test_split_casts_valid_rows_to_the_contract_schema():
    valid, rejects = ORDERS_LIKE.split(raw(order_id=["7"]))
    assert rejects.num_rows == 0
    assert valid.schema == ORDERS_LIKE.schema
    assert valid.to_pylist() == [
        {
            "order_id": 7,
            "amount": 1.5,
            "status": "placed",
            "order_date": date(2024, 1, 1),
            "updated_at": datetime(2024, 1, 1, tzinfo=UTC),
        }
    ]


def test_split_joins_every_reason_of_a_row():
    _, rejects = ORDERS_LIKE.split(raw(amount=["500"], status=["lost"]))
    assert rejects.column(REASON_COLUMN).to_pylist() == [
        "amount: above 100; status: not one of placed, shipped"
    ]


def test_split_keeps_lineage_columns_on_rejects():
    batch = raw(amount=["x"]).append_column("_batch_id", pa.array(["b1"]))
    _, rejects = ORDERS_LIKE.split(batch)
    assert rejects.column("_batch_id").to_pylist() == ["b1"]


def test_split_accounts_for_every_row():
    batch = raw(amount=["1", "x", "-1", "2", None])
    valid, rejects = ORDERS_LIKE.split(batch)
    assert valid.num_rows + rejects.num_rows == batch.num_rows == 5
    assert rejects.num_rows == 2


def test_split_of_typed_rows_under_a_contract_without_checks_rejects_none():
    plain = Table("plain", "silver", pa.schema([("n", pa.int64()), ("label", pa.string())]))
    valid, rejects = plain.split(pa.table({"n": [1, None], "label": ["a", "b"]}))
    assert valid.to_pydict() == {"n": [1, None], "label": ["a", "b"]}
    assert rejects.num_rows == 0
    assert REASON_COLUMN in rejects.column_names


def test_split_reports_a_bad_type_before_a_failed_check_of_another_column():
    _, rejects = ORDERS_LIKE.split(raw(order_date=["someday"], status=["lost"]))
    assert rejects.column(REASON_COLUMN).to_pylist() == [
        "order_date: not a valid Date; status: not one of placed, shipped"
    ]


def test_missing_required_column_is_a_clear_error():
    with pytest.raises(ContractViolation, match=r"missing required column\(s\) \['order_id'\]"):
        ORDERS_LIKE.split(raw().drop_columns(["order_id"]))


def test_missing_optional_column_is_filled_with_nulls():
    valid, _ = ORDERS_LIKE.split(raw().drop_columns(["status"]))
    assert valid.column("status").to_pylist() == [None]


def test_extra_columns_do_not_reach_the_contract_table():
    valid, _ = ORDERS_LIKE.split(raw().append_column("surprise", pa.array(["!"])))
    assert "surprise" not in valid.column_names


def test_deduplicate_keeps_the_newest_row_per_key():
    rows = pa.table(
        {
            "order_id": [1, 1, 2],
            "amount": [1.0, 2.0, 3.0],
            "status": ["placed"] * 3,
            "order_date": [date(2024, 1, 1)] * 3,
            "updated_at": [datetime(2024, 1, d, tzinfo=UTC) for d in (3, 2, 1)],
        }
    ).cast(ORDERS_LIKE.schema)
    latest = ORDERS_LIKE.deduplicate(rows)
    assert sorted(latest.select(["order_id", "amount"]).to_pylist(), key=str) == [
        {"order_id": 1, "amount": 1.0},
        {"order_id": 2, "amount": 3.0},
    ]


def test_key_columns_must_be_in_the_schema():
    with pytest.raises(ContractViolation, match="not in schema"):
        Table("t", "silver", pa.schema([("a", pa.int64())]), key=("b",))


@pytest.mark.parametrize("name", ["../orders", "a/../../b", "/etc", "s3://other/x", "a\\b", ""])
def test_a_table_name_cannot_escape_the_lake(name):
    with pytest.raises(UnsafePathError):
        Table(name, "silver")


def test_sibling_tables_live_in_their_layers():
    assert ORDERS_LIKE.bronze.path == "bronze/orders"
    assert ORDERS_LIKE.quarantine.path == "quarantine/orders"
    assert ORDERS_LIKE.bronze.schema is None


@pytest.mark.parametrize("seed", range(5))
def test_latest_rows_keep_what_a_hash_dedupe_keeps(seed):
    """Sorted dedupe against polars' unique: per key the newest, ties to the last delivered, a
    null key a key of its own, a null time older than any."""
    rng = random.Random(seed)
    table = Table("t", "silver", pa.schema([("a", pa.int64()), ("b", pa.string()),
                                            ("at", pa.int64())]), key=("a", "b"), newest_by="at")  # fmt: skip
    rows = 200
    data = pa.table(
        {
            "a": [rng.choice([None, 1, 2, 3]) for _ in range(rows)],
            "b": [rng.choice([None, "x", "y"]) for _ in range(rows)],
            "at": [rng.choice([None, 1, 2, 3]) for _ in range(rows)],
        }
    ).append_column("position", pa.array(range(rows)))
    expected = (
        pl.DataFrame(pl.from_arrow(data))
        .sort("at", nulls_last=False, maintain_order=True)
        .unique(subset=["a", "b"], keep="last")["position"]
        .sort()
        .to_list()
    )
    assert data.filter(table.latest_rows(data))["position"].to_pylist() == expected


def test_latest_rows_of_no_rows_are_none():
    assert len(ORDERS_LIKE.latest_rows(ORDERS_LIKE.schema.empty_table())) == 0
