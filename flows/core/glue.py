"""Register Delta tables in the AWS Glue Data Catalog, so Athena can query them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from flows.core import lake
from flows.core.contracts import Table
from flows.core.errors import ConfigurationError
from flows.core.settings import boto3_session, get_settings


def glue_type(arrow_type: pa.DataType) -> str:
    """The Hive/Glue type for an Arrow type (text for anything Athena cannot type)."""
    simple = {
        pa.int64(): "bigint",
        pa.int32(): "int",
        pa.int16(): "smallint",
        pa.float64(): "double",
        pa.float32(): "float",
        pa.bool_(): "boolean",
        pa.date32(): "date",
        pa.string(): "string",
        pa.large_string(): "string",
    }
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return simple.get(arrow_type, "string")


def glue_table_input(
    name: str, location: str, schema: pa.Schema, partition_by: Sequence[str], description: str
) -> dict[str, Any]:
    """The Glue `TableInput` of a Delta table (Athena reads the Delta log at `location`)."""
    if not location.startswith("s3://"):
        raise ConfigurationError(f"Glue needs an s3:// lake; {name} is at {location}")

    def columns(names: Sequence[str]) -> list[dict[str, str]]:
        return [{"Name": n, "Type": glue_type(schema.field(n).type)} for n in names]

    return {
        "Name": name,
        "Description": description[:2048],
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"table_type": "DELTA", "classification": "delta", "EXTERNAL": "TRUE"},
        "StorageDescriptor": {
            "Columns": columns([n for n in schema.names if n not in partition_by]),
            "Location": location,
            "SerdeInfo": {
                "SerializationLibrary": (
                    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                )
            },
        },
        "PartitionKeys": columns(list(partition_by)),
    }


def register(client: Any, database: str, tables: Sequence[dict[str, Any]]) -> list[str]:
    """Create `database` if needed, then create or update each table; returns the table names."""
    try:
        client.get_database(Name=database)
    except client.exceptions.EntityNotFoundException:
        client.create_database(DatabaseInput={"Name": database})
    for table in tables:
        try:
            client.get_table(DatabaseName=database, Name=table["Name"])
        except client.exceptions.EntityNotFoundException:
            client.create_table(DatabaseName=database, TableInput=table)
        else:
            client.update_table(DatabaseName=database, TableInput=table)
    return [table["Name"] for table in tables]


def register_tables(database: str, tables: Iterable[Table]) -> list[str]:
    """Create or update each table that exists in the lake as `<layer>_<name>` in `database`."""
    inputs = [
        glue_table_input(
            f"{t.layer.strip('_')}_{t.name}",
            lake.location(t),
            pa.schema(lake.open_table(t).schema().to_arrow()),
            t.partition_by,
            t.description,
        )
        for t in tables
        if lake.exists(t)
    ]
    return register(boto3_session(get_settings()).client("glue"), database, inputs)
