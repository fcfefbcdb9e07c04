"""Landing files (CSV, JSON lines, JSON arrays, Parquet, gzip) into bronze, silver and gold.

Only files not ingested before are read (the `_ops/landing_files` manifest); each is streamed in
batches into bronze in one idempotent commit (a Delta app transaction per delivery), conformed to
its table's contract into silver (MERGE on the key, later updates win) with rejects in quarantine,
and the gold days and customers it touched are rebuilt. A new column lands in bronze and is
reported; a file missing a required column fails alone. With no landing files, deterministic
samples are written first, so the zero-config run produces every table.

    python flows/etl/s3_data_pipeline.py                           # local lake under ./lake
    LAKE_URI=s3://bucket/lake python flows/etl/s3_data_pipeline.py --glue-database lake
"""

from flows.core.cli import run_from_command_line
from flows.etl.s3_pipeline.flow import s3_data_pipeline

__all__ = ["s3_data_pipeline"]

if __name__ == "__main__":
    run_from_command_line(s3_data_pipeline)
