"""No value of a column a contract declares personal reaches a log line, an artifact or Data Docs."""

import asyncio
import json

import pyarrow as pa
import pytest

from flows.catalog import CUSTOMERS
from flows.core import lake, storage
from flows.core.artifacts import json_rows, markdown_table
from flows.core.contracts import Table
from flows.core.errors import ContractViolation
from flows.etl.forget_subject import forget_subject
from flows.etl.s3_data_pipeline import s3_data_pipeline
from flows.etl.s3_pipeline.samples import seed_landing
from flows.etl.stream_enrichment import stream_enrichment
from flows.monitoring.data_quality_monitor import data_quality_monitor
from tests.conftest import drain_prefect_workers, run_output

SHARED_EMAIL = "shared.inbox@example.com"
TWINS = "\n".join(
    json.dumps(
        {
            "customer_id": i,
            "name": f"Twin {i}",
            "email": SHARED_EMAIL,
            "country": "DE",
            "segment": "consumer",
            "signup_date": "2024-01-01",
            "updated_at": "2024-01-02T00:00:00Z",
        }
    )
    for i in (5001, 5002)
).encode()
"""Two customers sharing an email: the monitor's uniqueness check fails on the email column."""


def test_artifact_rows_leave_out_every_column_a_contract_declares_personal():
    rows = [{"customer_id": 1, "name": "Ada", "email": "ada@example.com", "country": "DE"}]
    assert json_rows(rows) == [{"customer_id": 1, "country": "DE"}]
    assert "ada@example.com" not in markdown_table(pa.Table.from_pylist(rows))


@pytest.mark.parametrize(
    ("personal", "identifying", "message"),
    [(("phone",), (), "not in schema"), (("email",), ("name",), "must be declared personal")],
)
def test_personal_declarations_name_columns_of_the_contract(personal, identifying, message):
    schema = pa.schema([("id", pa.int64()), ("email", pa.string()), ("name", pa.string())])
    with pytest.raises(ContractViolation, match=message):
        Table("people", "silver", schema=schema, personal=personal, identifying=identifying)


def test_no_log_line_artifact_or_data_doc_shows_a_personal_value(local_lake, prefect_api):
    seed_landing(rows=300)
    storage.write_bytes("landing/customers/twins.jsonl", TWINS)
    states = [s3_data_pipeline(sample_data=False, return_state=True)]
    states.append(stream_enrichment(sample_rows=500, return_state=True))
    customer_tables = ["silver/customers", "bronze/customers", "quarantine/customers"]
    states.append(
        data_quality_monitor(tables=customer_tables, fail_on_critical=False, return_state=True)
    )
    states.append(forget_subject(3, requested_by="dpo", return_state=True))
    assert all(state.is_completed() for state in states), states
    drain_prefect_workers()

    people = lake.read(CUSTOMERS.bronze).select(*CUSTOMERS.personal)
    values = {v for column in people.iter_columns() for v in column.drop_nulls() if v}
    assert SHARED_EMAIL in values
    assert len(values) > 100
    output = asyncio.run(run_output([s.state_details.flow_run_id for s in states]))
    assert "silver/customers" in output  # the scan saw the monitor's real artifacts
    assert sorted(v for v in values if v in output) == []
    docs = [storage.read_bytes(p) for p in storage.list_objects("_ops/data_docs")]
    assert docs
    assert not [v for v in values if any(v.encode() in d for d in docs)]
