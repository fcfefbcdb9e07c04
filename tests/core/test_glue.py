"""Glue registration of Delta tables: column types and the `TableInput` Athena reads."""

import pyarrow as pa
import pytest

from flows.core import glue
from flows.core.errors import ConfigurationError


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [(pa.int64(), "bigint"), (pa.float64(), "double"), (pa.string(), "string"),
     (pa.date32(), "date"), (pa.timestamp("us", "UTC"), "timestamp"), (pa.bool_(), "boolean"),
     (pa.list_(pa.int64()), "string")],
)  # fmt: skip
def test_glue_types(arrow_type, expected):
    assert glue.glue_type(arrow_type) == expected


def test_glue_table_input_puts_partitions_apart_and_needs_s3():
    schema = pa.schema([("id", pa.int64()), ("day", pa.date32())])
    table = glue.glue_table_input("silver_x", "s3://b/lake/silver/x", schema, ["day"], "d")
    assert table["StorageDescriptor"]["Columns"] == [{"Name": "id", "Type": "bigint"}]
    assert table["PartitionKeys"] == [{"Name": "day", "Type": "date"}]
    assert table["Parameters"]["table_type"] == "DELTA"
    with pytest.raises(ConfigurationError, match="s3://"):
        glue.glue_table_input("silver_x", "/tmp/lake/silver/x", schema, [], "d")
