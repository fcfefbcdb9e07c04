"""The smallest useful flow: sample customers merged into silver/example_customers, a table of its
own (never the production flows' silver/customers). Copy it to start one.

python flows/examples/example_data_pipeline.py --rows 500
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import samples
from flows.catalog import EXAMPLE_CUSTOMERS
from flows.core import lake
from flows.core.artifacts import publish_table
from flows.core.cli import run_from_command_line
from flows.core.tasks import LAKE_WRITE


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def write_customers(rows: int, seed: int) -> lake.WriteResult:
    return lake.merge(EXAMPLE_CUSTOMERS, samples.customers(rows, seed=seed))


@flow(
    name="Example Data Pipeline",
    description="The template flow: sample customers merged into silver/example_customers.",
    log_prints=True,
)
def example_data_pipeline(rows: int = 100, seed: int = 7) -> lake.WriteResult:
    """Merge `rows` sample customers into silver/customers.

    Args:
        rows: how many sample customers.
        seed: the sample data's seed.
    """
    result = write_customers(rows, seed)
    publish_table(
        "example-data-pipeline", [result.__dict__], description="The commit this run made"
    )
    print(
        f"{result.table}: version {result.version}, {result.inserted} new, {result.updated} updated"
    )
    return result


if __name__ == "__main__":
    run_from_command_line(example_data_pipeline)
