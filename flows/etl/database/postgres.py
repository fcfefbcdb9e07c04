"""PostgreSQL reading for database_ingest: keyset chunks as Arrow, typed from the column types,
and the source's name and (watermark, key) position as kept in `_ops/ingest_state`."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql

from flows.core.errors import ConfigurationError, SourceError
from flows.core.http_pages import text_value
from flows.core.settings import get_settings
from flows.etl.ingest import Position

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_ARROW_TYPES: dict[str, pa.DataType] = {
    "int2": pa.int64(),
    "int4": pa.int64(),
    "int8": pa.int64(),
    "float4": pa.float64(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "bytea": pa.binary(),
}


def source_dsn() -> str:
    """The configured source DSN; a clear error when there is none."""
    dsn = get_settings().source_dsn
    if dsn is None or not dsn.get_secret_value():
        raise ConfigurationError(
            "no PostgreSQL source configured: set LAKE_SOURCE_DSN (or pass --dsn), e.g."
            " postgresql://user@host:5432/db"
        )
    return dsn.get_secret_value()


def _conninfo(dsn: str) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError as error:
        raise ConfigurationError(
            f"LAKE_SOURCE_DSN is not a valid PostgreSQL DSN: {error}"
        ) from None


def redacted(dsn: str) -> str:
    """`host:port/db` of a DSN, without user or password: safe for logs."""
    parts = _conninfo(dsn)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def database_name(dsn: str) -> str:
    return _conninfo(dsn).get("dbname", "")


def qualified_name(name: str) -> tuple[str, str]:
    """(schema, table) from `schema.table` or `table` (schema public); identifiers only."""
    parts = name.split(".")
    if len(parts) == 1:
        parts = ["public", *parts]
    if len(parts) != 2 or not all(_IDENTIFIER.match(part) for part in parts):
        raise ConfigurationError(f"{name!r} is not a table name like schema.table")
    return parts[0], parts[1]


def chunk_query(
    table: str, watermark: str, key: str, *, after: tuple[str, str] | None
) -> sql.Composed:
    """The next chunk in (watermark, key) order, strictly after `after`.

    Keyset order makes a chunk boundary exact even when many rows share one watermark value;
    rows whose watermark is NULL are never read.
    """
    schema, name = qualified_name(table)
    columns = sql.SQL("{}, {}").format(sql.Identifier(watermark), sql.Identifier(key))
    where = sql.SQL("WHERE {} IS NOT NULL").format(sql.Identifier(watermark))
    if after is not None:
        where = sql.SQL("WHERE ({}) > (%(watermark)s, %(key)s)").format(columns)
    return sql.SQL("SELECT * FROM {}.{} {} ORDER BY {} LIMIT %(limit)s").format(
        sql.Identifier(schema), sql.Identifier(name), where, columns
    )


def arrow_type(type_name: str, precision: int | None, scale: int | None) -> pa.DataType:
    """The Arrow type a PostgreSQL column lands as; anything unusual lands as text."""
    if type_name == "numeric":
        if precision is not None and scale is not None:
            return pa.decimal128(precision, scale)
        return pa.string()
    return _ARROW_TYPES.get(type_name, pa.string())


def rows_to_arrow(
    columns: Sequence[tuple[str, pa.DataType]], rows: Sequence[Sequence[Any]]
) -> pa.Table:
    """Rows from a cursor as an Arrow table with the given column types."""
    arrays = []
    for index, (_, type_) in enumerate(columns):
        values = [row[index] for row in rows]
        if type_ == pa.string():
            values = [text_value(value) for value in values]
        arrays.append(pa.array(values, type_))
    return pa.Table.from_arrays(arrays, names=[name for name, _ in columns])


def position_text(value: Any) -> str:
    """A watermark or key value as text PostgreSQL casts back to the column's type."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def encode_position(chunk: pa.Table, watermark: str, key: str) -> str:
    """The (watermark, key) of the chunk's last row, as the text stored in _ops/ingest_state."""
    last = chunk.slice(chunk.num_rows - 1).to_pylist()[0]
    return json.dumps([position_text(last[watermark]), position_text(last[key])])


def decode_position(position: Position | None) -> tuple[str, str] | None:
    if position is None:
        return None
    watermark, key = json.loads(position.position)
    return str(watermark), str(key)


def source_id(database: str, table: str) -> str:
    """The source as named in lineage and state: database and table, so the watermark survives
    a change of host (a failover, a replica, a proxy) and never holds credentials."""
    schema, name = qualified_name(table)
    return f"postgres:{database}/{schema}.{name}"


def read_chunk(
    dsn: str, table: str, watermark: str, key: str, *, after: tuple[str, str] | None, limit: int
) -> pa.Table:
    """One chunk, on its own connection (so a dropped connection costs one chunk's retry)."""
    query = chunk_query(table, watermark, key, after=after)
    parameters: dict[str, Any] = {"limit": limit}
    if after is not None:
        parameters |= {"watermark": after[0], "key": after[1]}
    try:
        with psycopg.connect(dsn, connect_timeout=10) as connection, connection.cursor() as cursor:
            cursor.execute(query, parameters)
            rows = cursor.fetchall()
            description = cursor.description or []
            types = connection.adapters.types
            columns = [
                (
                    column.name,
                    arrow_type(
                        getattr(types.get(column.type_code), "name", ""),
                        column.precision,
                        column.scale,
                    ),
                )
                for column in description
            ]
    except psycopg.OperationalError as error:
        raise SourceError(
            f"PostgreSQL source {redacted(dsn)} is unavailable: {str(error).strip()}"
        ) from error
    except psycopg.Error as error:
        raise SourceError(
            f"reading {table} from {redacted(dsn)} failed: {str(error).strip()}"
        ) from error
    return rows_to_arrow(columns, rows)


def create_sample_orders(dsn: str, table: str, records: Sequence[dict[str, Any]]) -> int:
    """Create `table` shaped like sample orders if missing, add `records`; rows it holds."""
    schema, name = qualified_name(table)
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
    try:
        with psycopg.connect(dsn, connect_timeout=10) as connection:
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
            connection.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (order_id bigint PRIMARY KEY,"
                    " customer_id bigint NOT NULL, product_id bigint, quantity integer,"
                    " amount numeric(12, 2), status text, order_date date NOT NULL,"
                    " updated_at timestamptz NOT NULL)"
                ).format(target)
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    sql.SQL(
                        "INSERT INTO {} VALUES (%(order_id)s, %(customer_id)s, %(product_id)s,"
                        " %(quantity)s, %(amount)s, %(status)s, %(order_date)s, %(updated_at)s)"
                        " ON CONFLICT (order_id) DO NOTHING"
                    ).format(target),
                    records,
                )
            count = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()
    except psycopg.Error as error:
        raise SourceError(f"cannot seed {table}: {str(error).strip()}") from error
    return int(count[0]) if count else 0
