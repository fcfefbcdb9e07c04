"""The database ingest's tasks and flow; the command is `flows/etl/database_ingest.py`."""

from __future__ import annotations

from dataclasses import asdict

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import samples
from flows.catalog import ingested_table
from flows.core.artifacts import publish_markdown, publish_table
from flows.core.inputs import allowed_here
from flows.core.lineage import fingerprint
from flows.core.settings import get_settings
from flows.core.tasks import EXTERNAL_SOURCE, retry_if_transient
from flows.etl.database.postgres import (
    create_sample_orders,
    database_name,
    decode_position,
    encode_position,
    read_chunk,
    source_dsn,
    source_id,
)
from flows.etl.ingest import (
    Landed,
    Position,
    land,
    landed_totals,
    read_position,
    save_position,
    stamped,
)

SAMPLE_TABLE = "lake_sample.orders"


@task(**EXTERNAL_SOURCE, retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE)
def extract_chunk(
    table: str, watermark: str, key: str, after: tuple[str, str] | None, limit: int
) -> pa.Table:
    return read_chunk(source_dsn(), table, watermark, key, after=after, limit=limit)


@task(**EXTERNAL_SOURCE, cache_policy=NO_CACHE)
def seed_sample_source(table: str, rows: int) -> int:
    """Create `table` with sample orders if it is missing (a demo source); rows it holds.

    A table that exists is left as it is: sample rows never reach a real source."""
    return create_sample_orders(source_dsn(), table, samples.orders(rows).to_pylist())


@flow(
    name="Database Ingest",
    description="A PostgreSQL table into bronze/silver/quarantine, incrementally by a watermark"
    " column; the watermark moves only after the lake commits.",
)
def database_ingest(
    table: str = SAMPLE_TABLE,
    target: str = "orders",
    watermark_column: str = "updated_at",
    key_column: str = "order_id",
    batch_rows: int | None = None,
    sample_data: bool | None = None,
    sample_rows: int = 1_000,
) -> dict[str, int | str]:
    """Ingest `table` from LAKE_SOURCE_DSN into the `target` contract, chunk by chunk.

    Args:
        table: the source table, `schema.table`.
        target: the silver table whose contract the rows are cast to and checked against.
        watermark_column: the column that orders changes (a timestamp or a sequence).
        key_column: the source's primary key; it breaks ties between equal watermarks.
        batch_rows: rows per chunk (default LAKE_BATCH_ROWS).
        sample_data: create a missing source table with sample orders (a demo source); default:
            the LAKE_SAMPLE_DATA setting, and then only for the demo table.
        sample_rows: sample orders the demo source is created with.
    """
    logger = get_run_logger()
    silver = ingested_table(target)
    source = source_id(database_name(source_dsn()), table)
    limit = batch_rows or get_settings().batch_rows
    # By default only the demo table: a mistyped name of a real table is never created.
    if allowed_here(sample_data) and (sample_data or table == SAMPLE_TABLE):
        held = seed_sample_source(table, sample_rows)
        logger.info("Sample source %s holds %d rows", table, held)

    position = read_position(source)
    start = position
    landed: list[Landed] = []
    while True:
        after = decode_position(position)
        chunk: pa.Table = extract_chunk(table, watermark_column, key_column, after, limit)
        if chunk.num_rows == 0:
            break
        batch_id = fingerprint(source, position.position if position else "")
        result = land(silver, silver.source_bronze("postgres"), stamped(chunk, source=source,
                      batch_id=batch_id), batch_id)  # fmt: skip
        position = Position(
            encode_position(chunk, watermark_column, key_column),
            (position.rows if position else 0) + chunk.num_rows,
        )
        save_position(source, position)
        landed.append(result)
        logger.info("Chunk %s: %d rows landed, watermark now %s", batch_id, result.rows,
                    position.position)  # fmt: skip
        if chunk.num_rows < limit:
            break

    summary: dict[str, int | str] = {
        "source": source,
        "chunks": len(landed),
        **landed_totals(landed),
        "watermark": position.position if position else "",
    }
    publish_table("database-ingest-chunks", [asdict(r) for r in landed],
                  description=f"Chunks landed from {source}")  # fmt: skip
    publish_markdown(
        "database-ingest",
        f"# {source} → {silver.path}\n\nWatermark {start.position if start else '(start)'} →"
        f" {summary['watermark'] or '(start)'}: {summary['rows']} rows in {summary['chunks']}"
        f" chunks, {summary['quarantined']} quarantined.",
        description="What this run ingested",
    )
    return summary
