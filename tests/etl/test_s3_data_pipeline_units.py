"""Pure pieces of the S3 data pipeline: formats, parsing, planning, conforming, gold, reports."""

import gzip
import json
from collections import Counter
from datetime import date

import polars as pl
import pyarrow as pa
import pytest

from flows.catalog import ORDERS
from flows.core.errors import ConfigurationError, ContentError, UnsafePathError
from flows.core.storage import StoredObject
from flows.etl.s3_pipeline.landing import (
    ERROR_COLUMN,
    RAW_COLUMN,
    error_batch,
    file_format,
    json_array_records,
    json_record,
    lines,
    records_batch,
    text_batch,
    text_schema,
)
from flows.etl.s3_pipeline.report import (
    drift_report,
    files_report,
    outcome_message,
    quarantine_report,
    run_summary,
)
from flows.etl.s3_pipeline.samples import sample_files
from flows.etl.s3_pipeline.transforms import (
    Conformed,
    FileResult,
    LandingFile,
    checked_landing,
    column_name_problem,
    conformed,
    customer_lifetime_value,
    daily_category_revenue,
    gold_scope,
    landing_files,
    merged_outcomes,
    missing_required,
    new_columns,
    plan,
    with_conformed,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("landing/orders/a.csv", "csv"),
        ("landing/orders/a.CSV.gz", "csv"),
        ("landing/orders/a.jsonl", "jsonl"),
        ("landing/orders/a.ndjson.gz", "jsonl"),
        ("landing/orders/a.json", "json"),
        ("landing/orders/a.parquet", "parquet"),
        ("landing/orders/a.parquet.gz", None),
        ("landing/orders/a.txt", None),
    ],
)
def test_file_format_follows_the_extension(path, expected):
    assert file_format(path) == expected


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"a\nb\n"], [b"a", b"b"]),
        ([b"a", b"b\r\n", b"\n  \nc"], [b"ab", b"c"]),
        ([b"x" * 5, b"y" * 5, b"z\nq"], [b"xxxxxyyyyyz", b"q"]),
        ([], []),
    ],
)
def test_lines_span_chunks_and_skip_blank_ones(chunks, expected):
    assert list(lines(chunks)) == expected


@pytest.mark.parametrize(
    ("line", "record", "reason"),
    [
        (b'{"a": 1}', {"a": 1}, None),
        (b'{"a": ', None, "malformed JSON"),
        (b"[1, 2]", None, "not a JSON object: list"),
        (b'{"a": "caf\xe9"}', None, "not valid UTF-8"),
    ],
)
def test_json_record_parses_or_says_why(line, record, reason):
    parsed, error, raw = json_record(line)
    assert parsed == record
    if reason is None:
        assert error is None
        assert raw is None
    else:
        assert error.startswith(reason)
        assert raw


def test_json_array_is_decoded_across_chunk_boundaries():
    text = json.dumps([{"a": i, "b": "x" * i} for i in range(50)] + [7]).encode()
    chunks = [text[i : i + 7] for i in range(0, len(text), 7)]
    records = list(json_array_records(chunks))
    assert [r["a"] for r, _, _ in records[:50]] == list(range(50))
    assert records[50] == (None, "not a JSON object: int", "7")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[{"a": 1}, {"a": ', "malformed JSON array at element 1"),
        (b'{"a": 1}', "JSON array or JSON lines"),
        (b'[{"a": "\xff"}]', "not valid UTF-8"),
    ],
)
def test_broken_json_arrays_raise_a_content_error(content, message):
    with pytest.raises(ContentError, match=message):
        list(json_array_records([content]))


def test_text_batch_keeps_bad_bytes_escaped_and_flags_the_row():
    schema = text_schema(["id", "name"])
    batch = pa.RecordBatch.from_pydict(
        {"id": pa.array([b"1", b"2"]), "name": pa.array([b"ok", b"caf\xe9"])}
    )
    out = text_batch(batch, schema).to_pydict()
    assert out["name"] == ["ok", "caf\\xe9"]
    assert out[ERROR_COLUMN] == [None, "not valid UTF-8 in name"]


def test_text_batch_turns_typed_columns_into_text_and_fills_missing_ones():
    schema = text_schema(["id", "day", "gone"])
    batch = pa.RecordBatch.from_pydict({"id": [1, 2], "day": pa.array([0, 1], pa.date32())})
    out = text_batch(batch, schema).to_pydict()
    assert out == {
        "id": ["1", "2"],
        "day": ["1970-01-01", "1970-01-02"],
        "gone": [None, None],
        ERROR_COLUMN: [None, None],
        RAW_COLUMN: [None, None],
    }


def test_records_batch_names_keys_the_schema_lacks():
    schema = text_schema(["a"])
    batch = records_batch([({"a": 1.5}, None, None), (None, "bad", "{x")], schema)
    assert batch.to_pydict() == {
        "a": ["1.5", None],
        ERROR_COLUMN: [None, "bad"],
        RAW_COLUMN: [None, "{x"],
    }
    with pytest.raises(KeyError, match="'b'"):
        records_batch([({"a": 1, "b": 2}, None, None)], schema)


def test_error_batch_keeps_reason_and_raw_text():
    batch = error_batch(text_schema(["a"]), [("malformed", "1,2,3")])
    assert batch.to_pydict() == {"a": [None], ERROR_COLUMN: ["malformed"], RAW_COLUMN: ["1,2,3"]}


SOURCES = {"orders": ORDERS}


def test_landing_files_keep_known_sources_and_say_why_others_are_ignored():
    objects = [
        StoredObject("landing/orders/a.csv", 10, "t1"),
        StoredObject("landing/orders/2024/b.json", 0, "t2"),
        StoredObject("landing/stray.csv", 1, "t3"),
        StoredObject("landing/unknown/c.csv", 1, "t4"),
    ]
    files, ignored = landing_files(objects, "landing", SOURCES)
    assert [(f.path, f.source, f.format) for f in files] == [
        ("landing/orders/a.csv", "orders", "csv"),
        ("landing/orders/2024/b.json", "orders", "json"),
    ]
    assert ignored == [
        ("landing/stray.csv", "not under landing/<source>/"),
        (
            "landing/unknown/c.csv",
            "'unknown' names no table declared for landing (declared: orders)",
        ),
    ]


def test_batch_id_changes_with_the_content_tag():
    one = LandingFile("landing/orders/a.csv", "orders", 10, "etag1", "csv")
    assert (
        one.batch_id == LandingFile("landing/orders/a.csv", "orders", 10, "etag1", "csv").batch_id
    )
    assert (
        one.batch_id != LandingFile("landing/orders/a.csv", "orders", 10, "etag2", "csv").batch_id
    )


def test_plan_ingests_new_files_resumes_bronze_ones_and_skips_finished_ones():
    files = [LandingFile(f"landing/orders/{n}.csv", "orders", 1, n, "csv") for n in "dcba"]
    by_name = {f.tag: f for f in files}
    manifest = {by_name["a"].batch_id: "done", by_name["b"].batch_id: "bronze",
                by_name["c"].batch_id: "failed"}  # fmt: skip
    result = plan(files, manifest)
    assert [f.tag for f in result.ingest] == ["d"]
    assert [f.tag for f in result.resume] == ["b"]
    assert result.already_done == 2


@pytest.mark.parametrize(
    ("retry_failed", "parsed_again"),
    [(None, []), ("all", ["c", "e"]), ("landing/orders/e.csv", ["e"]), ("landing/orders/a.csv", [])],
)  # fmt: skip
def test_failed_deliveries_are_parsed_again_only_when_asked(retry_failed, parsed_again):
    files = [LandingFile(f"landing/orders/{n}.csv", "orders", 1, n, "csv") for n in "ace"]
    statuses = {"a": "done", "c": "failed", "e": "failed"}
    manifest = {f.batch_id: statuses[f.tag] for f in files}
    result = plan(files, manifest, retry_failed)
    assert [f.tag for f in result.ingest] == parsed_again
    assert result.already_done == 3 - len(parsed_again)


@pytest.mark.parametrize(
    ("reconform", "replayed"),
    [(None, []), ("all", ["a", "b"]), ("orders", ["a"]), ("landing/customers/b.csv", ["b"])],
)
def test_done_deliveries_are_conformed_again_only_when_asked(reconform, replayed):
    files = [LandingFile("landing/orders/a.csv", "orders", 1, "a", "csv"),
             LandingFile("landing/customers/b.csv", "customers", 1, "b", "csv"),
             LandingFile("landing/orders/c.csv", "orders", 1, "c", "csv")]  # fmt: skip
    statuses = {"a": "done", "b": "done", "c": "failed"}
    result = plan(files, {f.batch_id: statuses[f.tag] for f in files}, reconform=reconform)
    assert sorted(f.tag for f in result.replay) == replayed
    assert (result.ingest, result.resume) == ([], [])
    assert result.already_done == 3 - len(replayed)


def test_merged_outcomes_gather_every_source():
    a, b, c = delivery("a.csv"), delivery("b.csv"), delivery("c.csv", "customers")
    done_a = Conformed(a.batch_id, 1, 1, 0, 1, 0, Counter())
    done_c = Conformed(c.batch_id, 2, 2, 0, 2, 0, Counter())
    done, failed = merged_outcomes([([done_a], {b.batch_id: "b: bad"}), ([done_c], {})])
    assert done == {a.batch_id: done_a, c.batch_id: done_c}
    assert failed == {b.batch_id: "b: bad"}


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["order_id", "amount", "_source"], None),
        (["order_id", "order_id", "amount"], "column(s) ['order_id'] appear more than once"),
        (["Order_ID", "order_id"], "column(s) ['Order_ID', 'order_id'] appear more than once"),
        (["order_id", "", "amount", " "], "column(s) [2, 4] of the header have no name"),
        (["_source", "order_id", "_source"], "column(s) ['_source'] appear more than once"),
    ],
)
def test_column_names_a_delta_table_cannot_hold_are_named(names, problem):
    assert column_name_problem(names) == problem


@pytest.mark.parametrize(
    ("landing", "sources"),
    [("../landing", None), ("/etc", None), ("s3://other-bucket/landing", None),
     ("landing", ["../orders"]), ("landing", ["orders/../../x"]), ("landing", ["a/b"]),
     ("landing/../..", None)],
)  # fmt: skip
def test_landing_and_sources_cannot_escape_the_lake_root(landing, sources):
    with pytest.raises(UnsafePathError):
        checked_landing(landing, sources, ["orders"])


def test_checked_landing_normalises_safe_paths():
    assert checked_landing("landing/", ["orders"], ["orders"]) == ("landing", ["orders"])


def test_an_unknown_source_fails_at_once_and_names_the_known_ones():
    with pytest.raises(
        ConfigurationError, match=r"unknown source\(s\) \['refund'\].*\['orders', 'refunds'\]"
    ):
        checked_landing("landing", ["refund"], ["refunds", "orders"])


def test_required_and_new_columns_against_the_contract():
    columns = ["order_id", "amount", "coupon", "_error"]
    assert missing_required(ORDERS, columns) == ["customer_id", "order_date", "updated_at"]
    assert new_columns(ORDERS, columns) == ("coupon",)


def _bronze(rows):
    names = [*ORDERS.schema.names, "coupon"]
    table = {n: [r.get(n) for r in rows] for n in names}
    table[ERROR_COLUMN] = [r.get(ERROR_COLUMN) for r in rows]
    table[RAW_COLUMN] = [r.get(RAW_COLUMN) for r in rows]
    table["_batch_id"] = ["b1"] * len(rows)
    return pa.table({n: pa.array(v, pa.string()) for n, v in table.items()})


GOOD = {"order_id": "1", "customer_id": "7", "product_id": "3", "quantity": "2",
        "amount": "10.5", "status": "placed", "order_date": "2024-01-02",
        "updated_at": "2024-01-02T10:00:00+00:00", "coupon": "X"}  # fmt: skip


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (GOOD, None),
        ({**GOOD, "amount": "twelve"}, "amount: not a valid Float64"),
        ({**GOOD, "order_id": None}, "order_id: is null"),
        ({**GOOD, "status": "lost"}, "status: not one of"),
        ({ERROR_COLUMN: "malformed CSV line: expected 8 fields, got 3", RAW_COLUMN: "1,2,3"},
         "malformed CSV line"),
    ],
)  # fmt: skip
def test_conformed_splits_valid_rows_from_rejects_with_a_reason(row, reason):
    valid, rejects = conformed(ORDERS, _bronze([row]))
    assert valid.num_rows + rejects.num_rows == 1
    if reason is None:
        assert valid.schema == ORDERS.schema
        assert valid.column("amount").to_pylist() == [10.5]
    else:
        assert rejects.column("_reason")[0].as_py().startswith(reason)
        assert rejects.column("_batch_id").to_pylist() == ["b1"]


def test_conformed_rejects_of_both_kinds_share_one_table():
    valid, rejects = conformed(
        ORDERS, _bronze([GOOD, {**GOOD, "amount": "x"}, {ERROR_COLUMN: "bad", RAW_COLUMN: "r"}])
    )
    assert valid.num_rows == 1
    assert rejects.num_rows == 2
    assert rejects.column(RAW_COLUMN).to_pylist() == [None, "r"]


ORDERS_FRAME = pl.DataFrame(
    {
        "order_date": [date(2024, 1, 1)] * 3 + [date(2024, 1, 2)],
        "customer_id": [1, 1, 2, 1],
        "product_id": [10, 11, 10, 99],
        "quantity": [1, 2, 3, 1],
        "amount": [10.0, 20.0, 30.0, 5.0],
        "status": ["placed", "shipped", "cancelled", "placed"],
    }
)


def test_daily_category_revenue_excludes_cancelled_and_names_unknown_products():
    products = pl.DataFrame({"product_id": [10, 11], "category": ["books", "toys"]})
    result = daily_category_revenue(ORDERS_FRAME, products)
    assert result.to_dicts() == [
        {"order_date": date(2024, 1, 1), "category": "books", "orders": 1, "units": 1, "revenue": 10.0},
        {"order_date": date(2024, 1, 1), "category": "toys", "orders": 1, "units": 2, "revenue": 20.0},
        {"order_date": date(2024, 1, 2), "category": "unknown", "orders": 1, "units": 1, "revenue": 5.0},
    ]  # fmt: skip


def test_customer_lifetime_value_per_customer():
    result = customer_lifetime_value(ORDERS_FRAME)
    assert result.to_dicts() == [
        {"customer_id": 1, "orders": 3, "revenue": 35.0, "first_order_date": date(2024, 1, 1),
         "last_order_date": date(2024, 1, 2), "average_order_value": 35.0 / 3},
    ]  # fmt: skip


def test_drift_report_lists_new_columns_and_rejected_files():
    file = LandingFile("landing/orders/a.csv", "orders", 1, "t", "csv")
    report = drift_report(
        [
            FileResult(file, "bronze", 3, new_columns=("coupon",)),
            FileResult(file, "failed", error="missing required column(s) ['order_id']"),
        ]
    )
    assert "added: coupon" in report
    assert "rejected: missing required" in report
    assert "No drift" in drift_report([FileResult(file, "bronze", 3)])


def test_sample_files_are_deterministic_and_cover_every_format():
    files = sample_files(200, seed=1)
    assert files == sample_files(200, seed=1)
    assert {file_format(name) for name in files} == {"csv", "jsonl", "json", "parquet"}
    assert gzip.decompress(files["orders/2024-01-orders.csv.gz"]).startswith(b'"order_id",')


def test_files_report_has_a_row_per_file_and_per_ignored_object():
    file = LandingFile("landing/orders/a.csv", "orders", 1, "t", "csv")
    rows = files_report([FileResult(file, "done", 3, quarantined=1)], [("landing/x.csv", "why")])
    assert [(r["file"], r["status"], r["rows parsed"], r["error"]) for r in rows] == [
        ("landing/orders/a.csv", "done", 3, ""),
        ("landing/x.csv", "ignored", 0, "why"),
    ]


def delivery(name, source="orders"):
    return LandingFile(f"landing/{source}/{name}", source, 1, name, "csv")


def test_conformed_files_are_marked_done_with_their_silver_counts():
    a, b = delivery("a.csv"), delivery("b.csv")
    done = {a.batch_id: Conformed(a.batch_id, 5, 4, 1, 4, 0, Counter({"bad amount": 1}))}
    marked = with_conformed([FileResult(a, "bronze", 5), FileResult(b, "failed")], done)
    assert [(r.status, r.quarantined, r.bronze_rows) for r in marked] == [
        ("done", 1, 5),
        ("failed", 0, 0),
    ]


def test_a_delivery_whose_content_cannot_be_conformed_is_marked_failed_with_the_reason():
    a, b = delivery("a.csv"), delivery("b.csv")
    marked = with_conformed(
        [FileResult(a, "bronze", 5), FileResult(b, "bronze", 2)], {}, {b.batch_id: "b: bad"}
    )
    assert [(r.status, r.error) for r in marked] == [("bronze", None), ("failed", "b: bad")]


def test_the_final_state_message_counts_files_that_failed_alone():
    assert outcome_message({"files_ingested": 3, "files_failed": 0}) == "3 file(s) ingested"
    assert outcome_message({"files_ingested": 3, "files_failed": 2}) == (
        "3 file(s) ingested; 2 failed alone (see the s3-pipeline-files artifact)"
    )


def test_gold_scope_takes_touched_days_and_customers_and_any_product_change():
    orders, products = delivery("o.csv"), delivery("p.csv", "products")
    done = {
        orders.batch_id: Conformed(orders.batch_id, 2, 2, 0, 2, 0, Counter(),
                                   frozenset({date(2024, 1, 2)}), pl.Series([3, 1])),
        products.batch_id: Conformed(products.batch_id, 1, 1, 0, 0, 1, Counter()),
    }  # fmt: skip
    results = [FileResult(orders, "done"), FileResult(products, "done")]
    days, customers, products_changed = gold_scope(results, done)
    assert (days, customers.to_list(), products_changed) == ({date(2024, 1, 2)}, [1, 3], True)
    assert gold_scope(results[:1], {orders.batch_id: done[orders.batch_id]})[2] is False


def test_quarantine_report_and_run_summary_add_up_every_delivery():
    a, b = delivery("a.csv"), delivery("b.csv")
    conformed_files = [
        Conformed(a.batch_id, 5, 3, 2, 3, 0, Counter({"bad amount": 2})),
        Conformed(b.batch_id, 4, 3, 1, 1, 2, Counter({"bad amount": 1})),
    ]
    assert quarantine_report(conformed_files).startswith("# Quarantined rows: 3\n\n")
    assert "bad amount" in quarantine_report(conformed_files)
    results = [FileResult(a, "done", 5), FileResult(b, "done", 0), FileResult(a, "empty")]
    summary = run_summary(results, conformed_files, done_before=7, gold_commits=2)
    assert summary == {
        "files_ingested": 2, "files_empty": 1, "files_failed": 0, "files_done_before": 7,
        "rows_parsed": 5, "rows_conformed": 9, "rows_valid": 6, "rows_quarantined": 3,
        "gold_commits": 2,
    }  # fmt: skip
