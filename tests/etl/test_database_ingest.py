import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import psycopg
import pyarrow as pa
import pytest

from flows.catalog import INGEST_STATE, ORDERS, ingested_table
from flows.core import lake
from flows.core.errors import ConfigurationError, SourceError
from flows.core.lineage import BATCH_COLUMN
from flows.etl.database.flow import seed_sample_source
from flows.etl.database.postgres import (
    arrow_type,
    chunk_query,
    database_name,
    decode_position,
    encode_position,
    position_text,
    qualified_name,
    redacted,
    rows_to_arrow,
    source_id,
)
from flows.etl.database_ingest import database_ingest
from flows.etl.ingest import Position
from tests.conftest import REPO_ROOT, free_port

BRONZE = ORDERS.source_bronze("postgres")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders", ("public", "orders")),
        ("s1.orders", ("s1", "orders")),
        ("a_b.c$1", ("a_b", "c$1")),
    ],
)
def test_qualified_name_accepts_plain_identifiers(name, expected):
    assert qualified_name(name) == expected


@pytest.mark.parametrize("name", ["", "a.b.c", "x; drop table y", "1abc", 'a."b"'])
def test_qualified_name_refuses_anything_else(name):
    with pytest.raises(ConfigurationError):
        qualified_name(name)


def test_chunk_query_orders_by_watermark_then_key_and_starts_after_the_position():
    first = chunk_query("s.t", "updated_at", "id", after=None).as_string(None)
    assert first == (
        'SELECT * FROM "s"."t" WHERE "updated_at" IS NOT NULL ORDER BY "updated_at", "id"'
        " LIMIT %(limit)s"
    )
    then = chunk_query("s.t", "updated_at", "id", after=("x", "1")).as_string(None)
    assert 'WHERE ("updated_at", "id") > (%(watermark)s, %(key)s)' in then


@pytest.mark.parametrize(
    ("pg_type", "precision", "scale", "expected"),
    [
        ("int4", None, None, pa.int64()),
        ("timestamptz", None, None, pa.timestamp("us", tz="UTC")),
        ("numeric", 12, 2, pa.decimal128(12, 2)),
        ("numeric", None, None, pa.string()),
        ("jsonb", None, None, pa.string()),
        ("uuid", None, None, pa.string()),
    ],
)
def test_arrow_type_per_postgres_type(pg_type, precision, scale, expected):
    assert arrow_type(pg_type, precision, scale) == expected


def test_rows_to_arrow_types_columns_and_renders_odd_values_as_text():
    table = rows_to_arrow(
        [("id", pa.int64()), ("doc", pa.string()), ("uid", pa.string())],
        [(1, {"b": 1, "a": [2]}, uuid.UUID(int=1)), (2, None, None)],
    )
    assert table.to_pylist() == [
        {"id": 1, "doc": '{"a": [2], "b": 1}', "uid": "00000000-0000-0000-0000-000000000001"},
        {"id": 2, "doc": None, "uid": None},
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2024-01-02T03:04:05.000006+00:00"),
        (date(2024, 1, 2), "2024-01-02"),
        (Decimal("1E+2"), "100"),
        (42, "42"),
    ],
)
def test_position_text_round_trips_through_postgres_casts(value, text):
    assert position_text(value) == text


def test_position_is_the_last_rows_watermark_and_key():
    chunk = pa.table({"updated_at": [1, 2], "order_id": [10, 11]})
    text = encode_position(chunk, "updated_at", "order_id")
    assert json.loads(text) == ["2", "11"]
    assert decode_position(Position(text, 2)) == ("2", "11")
    assert decode_position(None) is None


def test_redacted_names_server_and_database_without_credentials():
    dsn = "postgresql://u:s3cret@db.example:6543/sales"  # pragma: allowlist secret (a fake DSN)
    assert redacted(dsn) == "db.example:6543/sales"
    assert "s3cret" not in redacted("host=h password=s3cret dbname=d")


def test_unknown_target_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="'nope' is not fed by raw deliveries"):
        ingested_table("nope")


@pytest.fixture
def source_table(postgres_dsn, monkeypatch):
    """A fresh schema with a sample orders table (250 rows), dropped afterwards."""
    monkeypatch.setenv("LAKE_SOURCE_DSN", postgres_dsn)
    schema = f"t_{uuid.uuid4().hex[:10]}"
    table = f"{schema}.orders"
    assert seed_sample_source.fn(table, 250) == 250
    yield table
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def execute(dsn, statement):
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(statement)


def state_rows():
    return lake.read(INGEST_STATE)["rows"].to_list()


def assert_exactly_once(expected_ids):
    for table in (BRONZE, ORDERS):
        ids = lake.read(table, columns=["order_id"])["order_id"].cast(pl.Int64)
        assert ids.is_duplicated().sum() == 0, table.path
        assert set(ids.to_list()) == set(expected_ids), table.path


def test_ingest_is_incremental_and_a_rerun_adds_nothing(
    any_lake, prefect_api, source_table, postgres_dsn
):
    first = database_ingest(table=source_table, batch_rows=100)
    assert (first["chunks"], first["rows"], first["inserted"]) == (3, 250, 250)
    assert_exactly_once(range(1, 251))
    assert lake.read(BRONZE)[BATCH_COLUMN].n_unique() == 3
    assert state_rows() == [250]

    again = database_ingest(table=source_table, batch_rows=100)
    assert (again["chunks"], again["rows"]) == (0, 0)
    assert again["watermark"] == first["watermark"]
    assert lake.read(ORDERS).height == 250

    execute(
        postgres_dsn,
        f"UPDATE {source_table} SET status = 'cancelled', updated_at = now() WHERE order_id = 5",
    )
    execute(
        postgres_dsn,
        f"INSERT INTO {source_table} VALUES (251, 1, 1, 1, 9.99, 'placed', '2024-04-01', now())",
    )
    later = database_ingest(table=source_table, batch_rows=100)
    assert (later["rows"], later["inserted"], later["updated"]) == (2, 1, 1)
    silver = lake.read(ORDERS)
    assert silver.height == 251
    assert silver.filter(pl.col("order_id") == 5)["status"].to_list() == ["cancelled"]
    assert state_rows() == [252]


def test_rows_breaking_the_contract_are_quarantined_with_a_reason(
    local_lake, prefect_api, source_table, postgres_dsn
):
    execute(postgres_dsn, f"UPDATE {source_table} SET amount = -1 WHERE order_id IN (3, 4)")
    execute(postgres_dsn, f"UPDATE {source_table} SET status = 'lost' WHERE order_id = 9")
    summary = database_ingest(table=source_table)
    assert (summary["rows"], summary["valid"], summary["quarantined"]) == (250, 247, 3)
    quarantine = lake.read(ORDERS.quarantine).sort("order_id")
    assert quarantine["order_id"].to_list() == ["3", "4", "9"]
    assert quarantine["_reason"].to_list()[0] == "amount: below 0"
    assert lake.read(ORDERS).height + quarantine.height == lake.read(BRONZE).height


def test_unreachable_database_is_a_clear_error_and_nothing_moves(
    local_lake, prefect_api, monkeypatch
):
    closed_port = free_port()
    dsn = f"postgresql://postgres:pw@127.0.0.1:{closed_port}/test"  # pragma: allowlist secret
    monkeypatch.setenv("LAKE_SOURCE_DSN", dsn)
    with pytest.raises(
        SourceError, match=r"PostgreSQL source 127\.0\.0\.1:\d+/test is unavailable"
    ) as error:
        database_ingest(table="public.orders")
    assert "pw" not in str(error.value)
    assert not lake.exists(INGEST_STATE)
    assert not lake.exists(ORDERS)


class CuttingProxy:
    """A TCP proxy to PostgreSQL that serves `connections` connections, then refuses all."""

    def __init__(self, target_port, connections):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target_port = target_port
        self.remaining = connections
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.remaining > 0:
            client, _ = self.listener.accept()
            self.remaining -= 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
        self.listener.close()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            source.close()


def test_database_lost_mid_run_keeps_the_watermark_at_the_last_landed_chunk(
    local_lake, prefect_api, source_table, postgres_dsn, monkeypatch
):
    port = psycopg.conninfo.conninfo_to_dict(postgres_dsn).get("port", 5432)
    proxy = CuttingProxy(int(port), connections=2)
    monkeypatch.setenv("LAKE_SOURCE_DSN", postgres_dsn.replace(f":{port}/", f":{proxy.port}/"))
    with pytest.raises(SourceError, match="is unavailable"):
        database_ingest(table=source_table, batch_rows=100)
    proxy.thread.join(timeout=5)
    assert state_rows() == [200]
    assert_exactly_once(range(1, 201))

    monkeypatch.setenv("LAKE_SOURCE_DSN", postgres_dsn)
    resumed = database_ingest(table=source_table, batch_rows=100)
    assert (resumed["chunks"], resumed["rows"]) == (1, 50)
    assert_exactly_once(range(1, 251))
    assert state_rows() == [250]


def run_script(*arguments, env):
    return subprocess.run(
        [sys.executable, "flows/etl/database_ingest.py", *arguments],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_zero_config_run_asks_for_a_dsn_instead_of_guessing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LAKE_SOURCE_DSN"} | {
        "LAKE_URI": str(tmp_path)
    }
    result = run_script(env=env)
    assert result.returncode == 2
    assert "no PostgreSQL source configured: set LAKE_SOURCE_DSN (or pass --dsn)" in result.stderr
    assert not any(tmp_path.iterdir())


def test_script_seeds_a_demo_source_and_ingests_it(tmp_path, prefect_api, postgres_dsn):
    schema = f"t_{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if k != "LAKE_SOURCE_DSN"} | {
        "LAKE_URI": str(tmp_path / "lake"),
        "PREFECT_API_URL": prefect_api,
    }
    try:
        result = run_script(
            "--dsn",
            postgres_dsn,
            "--table",
            f"{schema}.orders",
            "--sample-data",
            "--sample-rows",
            "300",
            env=env,
        )
        assert result.returncode == 0, result.stderr[-2000:]
    finally:
        execute(postgres_dsn, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    assert postgres_dsn not in result.stdout + result.stderr


def test_source_id_survives_a_change_of_host_and_holds_no_credentials():
    one = source_id(database_name("postgresql://u:pw@primary:5432/sales"), "s.orders")
    other = source_id(database_name("host=replica port=6432 dbname=sales"), "s.orders")
    assert one == other == "postgres:sales/s.orders"
