"""`python -m flows.draft`: a landing file to a table declaration that accepts that file."""

import gzip
import io
import json

import polars as pl
import pyarrow as pa
import pytest

import flows.catalog
from flows.catalog import landing_sources
from flows.core import lake, storage
from flows.core.contracts import UTC_MICROS, Table, required
from flows.draft import declaration, first_lines, main, sample, typed
from flows.etl.s3_pipeline.layers import conform_files, ingest_file
from flows.etl.s3_pipeline.transforms import landing_files

ROWS = [
    {"refund_id": i, "order_id": 100 + i % 7, "amount": None if i % 5 == 0 else i * 1.5,
     "reason": "late" if i % 2 else "damaged", "refunded": i % 3 == 0,
     "refund_date": f"2024-05-0{1 + i % 3}", "updated_at": f"2024-05-01T09:{i % 60:02d}:00+00:00"}
    for i in range(1, 301)
]  # fmt: skip


def csv_bytes() -> bytes:
    sink = io.StringIO()
    pl.DataFrame(ROWS).write_csv(sink)
    return sink.getvalue().encode()


def parquet_bytes() -> bytes:
    sink = io.BytesIO()
    frame = pl.DataFrame(ROWS).with_columns(pl.col("refund_date").str.to_date())
    frame.write_parquet(sink)
    return sink.getvalue()


FILES = {
    "landing/refunds/a.csv": csv_bytes,
    "landing/refunds/a.jsonl.gz": lambda: gzip.compress("\n".join(map(json.dumps, ROWS)).encode()),
    "landing/refunds/a.parquet": parquet_bytes,
}


def drafted(source: str) -> Table:
    namespace = {"pa": pa, "Table": Table, "required": required, "UTC_MICROS": UTC_MICROS}
    exec(source, namespace)
    return namespace["REFUNDS"]


@pytest.mark.parametrize("path", FILES)
def test_a_drafted_contract_accepts_the_file_it_was_drafted_from(local_lake, path, capsys):
    storage.write_bytes(path, FILES[path]())
    main([path])
    table = drafted(capsys.readouterr().out)
    types = {f.name: f.type for f in table.schema}
    assert types["refund_id"] == pa.int64()
    assert types["amount"] == pa.float64()
    assert types["updated_at"] == UTC_MICROS
    assert types["refund_date"] == pa.date32()
    assert types["refunded"] == pa.bool_()
    nullable = {f.name for f in table.schema if f.nullable}
    assert nullable == {"amount"}
    assert (table.key, table.newest_by, table.partition_by) == (
        ("refund_id",), "updated_at", ("refund_date",))  # fmt: skip
    valid, rejects = table.split(sample(path).cast(pl.String).to_arrow())
    assert (valid.num_rows, rejects.num_rows) == (len(ROWS), 0)


def test_from_a_file_to_silver_with_the_draft_pasted(local_lake, monkeypatch):
    storage.write_bytes("landing/refunds/a.csv", csv_bytes())
    table = drafted(declaration("refunds", typed(sample("landing/refunds/a.csv"))))
    monkeypatch.setattr(flows.catalog, "CATALOG", (*flows.catalog.CATALOG, table))
    files, _ = landing_files(storage.describe_objects("landing"), "landing", landing_sources())
    [result] = [ingest_file(f, run_id="draft") for f in files]
    done, failed = conform_files([result.file])
    assert (done[0].valid, done[0].quarantined, failed) == (len(ROWS), 0, {})
    assert lake.read(table).height == len(ROWS)


def test_an_unreadable_file_is_a_clear_error(local_lake, capsys):
    storage.write_bytes("landing/refunds/a.parquet", b"not parquet")
    with pytest.raises(SystemExit) as exit_info:
        main(["landing/refunds/a.parquet"])
    assert exit_info.value.code == 2
    assert "cannot draft a contract from landing/refunds/a.parquet" in capsys.readouterr().err


def test_only_the_first_lines_of_a_delivery_are_read():
    assert first_lines(pa.BufferReader(b"h\na\nb\nc\n"), 3, block_bytes=2) == b"h\na\nb"
    assert first_lines(pa.BufferReader(b"h\na"), 3) == b"h\na"
