"""README.md's "Adding a table", followed to the letter: its declaration, added to the catalog,
makes `landing/refunds/` a source of the S3 data pipeline with no other edit."""

import re

import pyarrow as pa
import pytest

import flows.catalog
from flows.core import checks, lake, storage
from flows.core.contracts import Table
from flows.etl.s3_data_pipeline import s3_data_pipeline
from tests.conftest import REPO_ROOT


def readme_declaration() -> Table:
    section = (REPO_ROOT / "README.md").read_text().split("## Adding a table", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert code, "README.md's 'Adding a table' shows no Python declaration"
    namespace = {"pa": pa, "Table": Table, **vars(checks)}
    exec(code.group(1), namespace)
    tables = [value for value in namespace.values() if isinstance(value, Table)]
    assert len(tables) == 1
    return tables[0]


@pytest.fixture
def refunds(monkeypatch):
    table = readme_declaration()
    monkeypatch.setattr(flows.catalog, "CATALOG", (*flows.catalog.CATALOG, table))
    return table


def test_the_readme_declaration_lands_files_with_no_other_edit(
    local_lake, prefect_api, refunds, caplog
):
    header = "refund_id,order_id,amount,reason,updated_at\n"
    storage.write_bytes(
        "landing/refunds/2024-05-01.csv",
        (header + "1,10,25.0,late,2024-05-01T09:00:00+00:00\n"
         "2,11,-4.0,late,2024-05-01T09:00:00+00:00\n"
         "3,12,15.0,lost,2024-05-01T09:00:00+00:00\n").encode(),
    )  # fmt: skip
    storage.write_bytes("landing/refund/typo.csv", header.encode())

    summary = s3_data_pipeline(sources=None, sample_data=False)

    assert (summary["files_ingested"], summary["rows_valid"], summary["rows_quarantined"]) == (
        1,
        1,
        2,
    )
    assert lake.read(refunds)["refund_id"].to_list() == [1]
    reasons = sorted(lake.read(refunds.quarantine)["_reason"].to_list())
    assert reasons == ["amount: below 0", "reason: not one of damaged, late, unwanted"]
    assert lake.read(refunds.bronze).height == 3
    assert refunds.path in {t.path for t in flows.catalog.physical_tables()}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("Ignored landing/refund/typo.csv: 'refund' names no table" in m for m in warnings)
    only = s3_data_pipeline(sources=["refunds"], sample_data=False)
    assert only["files_done_before"] == 1


def test_an_unknown_source_fails_before_touching_the_lake(local_lake, prefect_api, refunds):
    with pytest.raises(Exception, match=r"unknown source\(s\) \['refund'\].*'refunds'"):
        s3_data_pipeline(sources=["refund"], sample_data=False)
    assert not local_lake.exists()
