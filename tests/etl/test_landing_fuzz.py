"""The landing path fuzzed: awkward deliveries beside a valid one, through the pipeline's own
per-file steps (parse into bronze, conform into silver and quarantine).

Invariants: every file is ingested or failed with a reason, never an exception (a transient fault
is raised, so the task retries it); the valid delivery lands exactly; silver + quarantine account
for every bronze row of each delivery; a second pass changes nothing. For a longer run:
`LAKE_FUZZ_EXAMPLES=500 pytest tests/etl/test_landing_fuzz.py`.
"""

import contextlib
import gzip
import io
import json
import os
import tempfile
from unittest import mock

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flows.catalog import ORDERS, landing_sources
from flows.core import lake, storage
from flows.core.lineage import BATCH_COLUMN
from flows.etl.s3_pipeline.layers import conform_files, ingest_file
from flows.etl.s3_pipeline.transforms import landing_files

EXAMPLES = int(os.environ.get("LAKE_FUZZ_EXAMPLES", "30"))
COLUMNS = ["order_id", "customer_id", "product_id", "quantity", "amount", "status", "order_date",
           "updated_at"]  # fmt: skip
VALID_IDS = range(5_000_000_001, 5_000_000_021)
VALID_CSV = "\n".join(
    [",".join(COLUMNS)]
    + [f"{i},7,3,2,12.5,placed,2024-01-02,2024-01-02T10:00:00+00:00" for i in VALID_IDS]
).encode()

names = st.one_of(
    st.sampled_from(COLUMNS),
    st.sampled_from(["", " ", "Order_ID", "_source", "_raw", "coupon", "prix €", "注文", "a,b"]),
    st.text(max_size=12),
)
column_lists = st.one_of(
    st.permutations(COLUMNS),
    st.lists(names, min_size=1, max_size=10),
    st.permutations(COLUMNS).map(lambda c: [*c, c[0]]),  # a repeated column
)
scalars = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["placed", "2024-01-02", "2024-01-02T10:00:00+01:00", "1e3", "", "NaN"]),
    st.text(max_size=30),
    st.just("x" * 5_000),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6
)  # fmt: skip


def text_cell(value) -> str:
    return "" if value is None else str(value)


@st.composite
def csv_file(draw):
    columns = draw(column_lists)
    rows = draw(st.lists(st.lists(scalars.map(text_cell), min_size=len(columns),
                                  max_size=len(columns) + 1), max_size=15))  # fmt: skip
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    quote = draw(st.booleans())
    cell = (lambda v: '"' + v.replace('"', '""') + '"') if quote else (lambda v: v)
    lines = [delimiter.join(cell(v) for v in row) for row in [columns, *rows]]
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 2]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return "csv", text.encode(encoding, errors="replace")


@st.composite
def json_file(draw):
    records = draw(st.lists(st.dictionaries(names, json_values, max_size=9), max_size=10))
    if draw(st.booleans()):
        lines = [json.dumps(r, ensure_ascii=draw(st.booleans())) for r in records]
        if lines and draw(st.booleans()):
            broken = draw(st.integers(0, len(lines) - 1))
            lines[broken] = lines[broken][: len(lines[broken]) // 2]
        return "jsonl", "\n".join(lines).encode()
    return "json", json.dumps(records).encode()


ARROW_TYPES = {
    "int8": (pa.int8(), st.integers(-128, 127)),
    "int64": (pa.int64(), st.integers(-(10**6), 10**6)),
    "float32": (pa.float32(), st.floats(width=32)),
    "string": (pa.string(), st.text(max_size=20)),
    "bool": (pa.bool_(), st.booleans()),
    "date": (pa.date32(), st.dates()),
    "timestamp": (pa.timestamp("ms"), st.datetimes()),
    "list": (pa.list_(pa.int64()), st.lists(st.integers(-5, 5), max_size=3)),
    "struct": (pa.struct([("a", pa.string())]), st.fixed_dictionaries({"a": st.text(max_size=5)})),
}


@st.composite
def parquet_file(draw):
    columns = draw(st.lists(names.filter(bool), min_size=1, max_size=8, unique=True))
    rows = draw(st.integers(0, 12))
    arrays = []
    for _ in columns:
        arrow_type, values = ARROW_TYPES[draw(st.sampled_from(sorted(ARROW_TYPES)))]
        column = draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
        arrays.append(pa.array(column, type=arrow_type))
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=columns), sink)
    return "parquet", sink.getvalue()


@st.composite
def deliveries(draw):
    kind, data = draw(
        st.one_of(csv_file(), json_file(), parquet_file(),
                  st.tuples(st.sampled_from(["csv", "json", "parquet", "txt"]), st.binary(max_size=600)))
    )  # fmt: skip
    if data and draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, len(data) - 1))]  # truncated
    if kind != "parquet" and draw(st.booleans()):
        kind, data = f"{kind}.gz", gzip.compress(data)
    return f"fuzz.{kind}", data


@contextlib.contextmanager
def fresh_lake():
    with tempfile.TemporaryDirectory() as folder, mock.patch.dict(os.environ, {"LAKE_URI": folder}):
        yield


@contextlib.contextmanager
def transient_fault_on_first_commit():
    """The first bronze commit meets a dropped connection; later ones go through."""
    real = lake.append_once
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionResetError(104, "Connection reset by peer")
        return real(*args, **kwargs)

    with mock.patch.object(lake, "append_once", flaky):
        yield


def one_pass():
    """Ingest every delivery, then conform those in bronze; check each delivery's accounting."""
    files, _ = landing_files(storage.describe_objects("landing"), "landing", landing_sources())
    results = {f.path: ingest_file(f, run_id="fuzz") for f in files}
    for result in results.values():
        assert result.status in ("bronze", "empty", "failed"), result
        if result.status == "failed":
            assert result.error
            assert result.error.startswith(f"{result.file.path}: ")
            assert len(result.error) > len(result.file.path) + 2
    in_bronze = [r.file for r in results.values() if r.status == "bronze"]
    done, failed = conform_files(in_bronze)
    for conformed in done:
        batch = pl.col(BATCH_COLUMN) == conformed.batch_id
        assert lake.read(ORDERS.bronze, where=batch).height == conformed.bronze_rows
        assert conformed.valid + conformed.quarantined == conformed.bronze_rows
        if conformed.quarantined:
            assert lake.read(ORDERS.quarantine, where=batch).height == conformed.quarantined
    assert all(error.startswith("landing/orders/") for error in failed.values())
    return results, {c.batch_id for c in done}


def table_or_empty(table):
    return lake.read(table).sort(pl.all()) if lake.exists(table) else None


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(delivery=deliveries(), fault=st.booleans())
@example(delivery=("cr-in-header.csv", b"\r\xc2\xaf"), fault=False)  # found by this test
def test_no_delivery_blocks_the_others_and_a_second_pass_changes_nothing(delivery, fault):
    name, data = delivery
    with fresh_lake():
        storage.write_bytes("landing/orders/valid.csv", VALID_CSV)
        storage.write_bytes(f"landing/orders/{name}", data)
        if fault:
            with transient_fault_on_first_commit():
                raised = None
                try:
                    one_pass()
                except ConnectionResetError as error:
                    raised = error
                assert raised is not None, "a transient fault must be raised for a retry"

        results, conformed = one_pass()

        valid = results["landing/orders/valid.csv"]
        assert (valid.status, valid.file.batch_id in conformed) == ("bronze", True)
        landed = lake.read(ORDERS, where=pl.col("order_id").is_in(list(VALID_IDS)))
        assert sorted(landed["order_id"].to_list()) == list(VALID_IDS)
        assert set(landed["amount"].to_list()) == {12.5}
        tables = [table_or_empty(t) for t in (ORDERS.bronze, ORDERS, ORDERS.quarantine)]

        again, _ = one_pass()

        assert all(r.rows == 0 for r in again.values())  # every bronze commit was already there
        for before, table in zip(tables, (ORDERS.bronze, ORDERS, ORDERS.quarantine), strict=True):
            after = table_or_empty(table)
            assert (before is None) == (after is None)
            if before is not None:
                assert before.drop("_ingested_at", strict=False).equals(
                    after.drop("_ingested_at", strict=False)
                )
