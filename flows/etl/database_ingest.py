"""A PostgreSQL table into the lake, incrementally by a watermark column; re-running adds nothing.

Rows are read in (watermark, key) order, `batch_rows` at a time. Each chunk lands in
bronze/<target>_postgres (replaced by its batch id), its valid rows merge into silver/<target>
and its rejects go to quarantine/<target>; only then does the watermark in _ops/ingest_state
move. If the database goes away, the run fails with a clear error and the watermark stays at
the last chunk that fully landed, so the next run continues from there.

The DSN is a secret: it is read from LAKE_SOURCE_DSN (`--dsn` sets it for this process), never
passed as a flow parameter, so it never reaches the Prefect API, its UI or the logs.

    LAKE_SOURCE_DSN=postgresql://user@host/db python flows/etl/database_ingest.py --table s.orders
    python flows/etl/database_ingest.py --dsn postgresql://u@127.0.0.1/db --sample-data
"""

from flows.core.cli import run_from_command_line
from flows.etl.database.flow import database_ingest
from flows.etl.database.postgres import source_dsn

__all__ = ["database_ingest"]

if __name__ == "__main__":
    run_from_command_line(database_ingest, settings={"--dsn": "LAKE_SOURCE_DSN"}, check=source_dsn)
