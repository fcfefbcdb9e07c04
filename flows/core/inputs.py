"""Missing inputs: filled with sample data only where that belongs, else the run stops and says why.

Every flow with an input table takes `sample_data: bool | None = None` (None: LAKE_SAMPLE_DATA).
Sample data fills an input only when that table does not exist, and only on a lake on a local
folder (the zero-config run) or when a user asks; never on S3 by default, never from a deployment
unless its parameters say so. Otherwise the flow writes nothing and names what produces the input:
a run started by hand fails with that message, a scheduled (deployment) run completes with it, so
a fresh platform pages no one every five minutes until the first ingest.

    reason = provide_inputs([(ORDERS, lambda: samples.orders(rows))], sample_data)
    if reason:
        return stop(reason)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import deployment
from prefect.states import Completed

from flows.core import lake
from flows.core.contracts import Table
from flows.core.errors import MissingInputError
from flows.core.settings import LakeSettings, SampleData, get_settings
from flows.core.tasks import LAKE_WRITE, existing_tables

Sampler = Callable[[], pa.Table | Sequence[pa.Table]]
"""Sample rows for one input table; a sequence is written as one commit per table."""

LANDING_PIPELINE = "flows/etl/s3_data_pipeline.py"


def sample_data_allowed(
    requested: bool | None, *, setting: SampleData, is_s3: bool, deployed: bool
) -> bool:
    """Whether sample data may fill a missing input: the flow's parameter, else the setting
    (`auto`: on for a local folder outside a deployment, off on S3)."""
    if requested is not None:
        return requested
    if setting != "auto":
        return setting == "on"
    return not is_s3 and not deployed


def fills_with_samples(exists: bool, requested: bool | None, *, setting: SampleData,
                       is_s3: bool, deployed: bool = False) -> bool:  # fmt: skip
    """The whole rule: a table that exists is never filled; a missing one only when allowed."""
    allowed = sample_data_allowed(requested, setting=setting, is_s3=is_s3, deployed=deployed)
    return not exists and allowed


def deployment_run() -> bool:
    """Whether this flow run (or the run it is nested in) was started from a deployment."""
    return deployment.id is not None


def allowed_here(requested: bool | None, settings: LakeSettings | None = None) -> bool:
    """`sample_data_allowed` for this run's lake, setting and origin."""
    settings = settings or get_settings()
    return sample_data_allowed(requested, setting=settings.sample_data, is_s3=settings.is_s3,
                               deployed=deployment_run())  # fmt: skip


def producer(tables: Sequence[Table]) -> str:
    """What produces `tables`, in words a user can act on."""
    landed = [t for t in tables if t.ingested]
    if len(landed) < len(tables):
        return "run the flows that write them (see flows/README.md)"
    folders = ", ".join(f"landing/{t.name}/" for t in landed)
    return (
        f"land files under {folders} and run {LANDING_PIPELINE} (or ingest with"
        " flows/etl/database_ingest.py or flows/etl/api_ingest.py)"
    )


def missing_message(tables: Sequence[Table]) -> str:
    """One line: which inputs are missing, what produces them, how to allow sample data."""
    settings = get_settings()
    names = ", ".join(t.path for t in tables)
    verb = "does" if len(tables) == 1 else "do"
    return (
        f"{names} {verb} not exist yet and sample data is off here (LAKE_SAMPLE_DATA="
        f"{settings.sample_data}, lake {settings.root}): {producer(tables)}."
        " Nothing was written; to fill a missing input with sample rows instead, pass"
        " --sample-data (sample_data=True)."
    )


@task(**LAKE_WRITE, cache_policy=NO_CACHE, task_run_name="sample-{table.layer}-{table.name}")
def write_sample(table: Table, sampler: Sampler) -> int:
    """Write a missing input's sample rows (append: the table does not exist); rows written."""
    data = sampler()
    batches = [data] if isinstance(data, pa.Table) else list(data)
    for batch in batches:
        lake.append(table, batch)
    return sum(batch.num_rows for batch in batches)


def provide_inputs(inputs: Sequence[tuple[Table, Sampler]], sample_data: bool | None) -> str | None:
    """Fill each missing input with its sample where allowed; else the reason to stop the run."""
    present = {t.path for t in existing_tables([table for table, _ in inputs])}
    missing = [(table, sampler) for table, sampler in inputs if table.path not in present]
    if not missing:
        return None
    if not allowed_here(sample_data):
        return missing_message([table for table, _ in missing])
    logger = get_run_logger()
    for table, sampler in missing:
        rows = write_sample(table, sampler)
        logger.info("%s did not exist: filled it with %d sample rows", table.path, rows)
    return None


def stop(reason: str) -> State[Any]:
    """End a run whose input is missing: a scheduled run completes with `reason`, a run started
    by hand fails with it."""
    if deployment_run():
        get_run_logger().warning(reason)
        return Completed(message=reason)
    raise MissingInputError(reason)
