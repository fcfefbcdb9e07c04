"""A large input cut into batches, processed in parallel as mapped tasks, one commit per batch.

silver/transactions is cut into one batch per day: stable boundaries, so a re-run replaces
exactly the partitions it wrote before. Each batch task reads its day (the filter is pushed into
the Delta scan), scores it and replaces that day's partition of silver/scored_transactions.
Tasks run on threads, or on a Dask cluster when one is configured (flows/core/runners.py). A batch
that fails is retried (unless its data breaks the input contract: retrying cannot help), then
reported while the other batches still land; the run ends Failed if any batch did, after the
progress, per-batch and summary artifacts (success rate, rows/s) are published.

    python flows/etl/batch_processing.py
    LAKE_DASK_ADDRESS=tcp://scheduler:8786 python flows/etl/batch_processing.py --large-amount 500
"""

from flows.core.cli import run_from_command_line
from flows.etl.batch.flow import batch_processing

__all__ = ["batch_processing"]

if __name__ == "__main__":
    run_from_command_line(batch_processing)
