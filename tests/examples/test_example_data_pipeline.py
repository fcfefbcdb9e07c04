from flows.catalog import EXAMPLE_CUSTOMERS
from flows.core import lake
from flows.examples.example_data_pipeline import example_data_pipeline


def test_example_flow_merges_customers_and_is_idempotent(any_lake, prefect_api):
    first = example_data_pipeline(rows=50)
    assert (first.inserted, first.updated) == (50, 0)
    second = example_data_pipeline(rows=50)
    assert second.inserted == 0
    assert lake.read(EXAMPLE_CUSTOMERS).height == 50
