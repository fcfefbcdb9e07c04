"""Task policies by what a task touches, and the tasks every category shares.

    @task(**LAKE_WRITE, cache_policy=NO_CACHE)
    def write_orders(orders: pa.Table) -> lake.WriteResult: ...

A lake read is cheap to repeat and its failures are short (a throttled GET, a commit racing the
read); a lake write may meet a commit conflict that needs longer to clear; an external source
(landing objects, an HTTP API, a database, the Prefect API) may be down for longer still.
"""

from __future__ import annotations

from typing import Any, TypedDict

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from flows.core import lake
from flows.core.contracts import Table
from flows.core.errors import LakeError, SourceError, error_kind


class RetryPolicy(TypedDict):
    """The retry arguments of `@task`."""

    retries: int
    retry_delay_seconds: list[float]


LAKE_READ: RetryPolicy = {"retries": 2, "retry_delay_seconds": [2, 10]}
LAKE_WRITE: RetryPolicy = {"retries": 3, "retry_delay_seconds": [1, 5, 15]}
EXTERNAL_SOURCE: RetryPolicy = {"retries": 3, "retry_delay_seconds": [2, 5, 15]}


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """A task's `retry_condition_fn`: retry what may pass next time, never a content error."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, BaseException) or error_kind(error) == "transient"


@task(**LAKE_READ, cache_policy=NO_CACHE)
def existing_tables(tables: list[Table]) -> list[Table]:
    """The tables of `tables` that exist in the lake, in the same order."""
    return [table for table in tables if lake.exists(table)]


def stage_results(description: str, futures: list[Any]) -> list[Any]:
    """Wait for a stage's tasks; a failure that outlived its retries becomes one clear error."""
    try:
        return [future.result() for future in futures]
    except LakeError:
        raise
    except Exception as error:
        raise SourceError(
            f"{description} failed after {LAKE_WRITE['retries']} retries: {error}. Nothing"
            " partial is visible (each write is one Delta commit); re-run to finish."
        ) from error
