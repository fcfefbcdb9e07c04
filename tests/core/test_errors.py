"""Errors by kind: what a retry may fix, and what a unit's content caused (it fails alone)."""

import gzip
import io
import json

import botocore.exceptions
import httpx
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from prefect.states import Failed

from flows.core import lake
from flows.core.contracts import Table
from flows.core.errors import (
    ConfigurationError,
    ContentError,
    ContractViolation,
    CorruptTableError,
    ObjectNotFoundError,
    SourceError,
    UnsafePathError,
    WriteConflictError,
    error_kind,
)
from flows.core.tasks import retry_if_transient


def raised(action):
    try:
        action()
    except Exception as error:
        return error
    raise AssertionError("nothing was raised")


def client_error(code, status):
    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "GetObject")


CONTENT = {
    "invalid UTF-8": raised(lambda: b"\xff\xfe".decode()),
    "malformed JSON": raised(lambda: json.loads("{")),
    "truncated gzip": raised(lambda: gzip.decompress(gzip.compress(b"a,b\n1,2\n")[:-6])),
    "not gzip": raised(lambda: gzip.decompress(b"plain text")),
    "CSV with a ragged row": raised(lambda: pacsv.read_csv(io.BytesIO(b"a,b\n1,2,3\n"))),
    "not Parquet": raised(lambda: pq.read_table(pa.BufferReader(b"PAR1 no footer"))),
    "a value that does not cast": raised(lambda: pa.array(["x"]).cast(pa.int64())),
    "Polars schema clash": raised(
        lambda: pl.concat([pl.DataFrame({"a": [1]}), pl.DataFrame({"b": ["x"]})])
    ),
    "a contract violation": ContractViolation("missing required column(s) ['order_id']"),
    "a content error": ContentError("a .json file must hold a JSON array or JSON lines"),
    "an object gone since listing": client_error("NoSuchKey", 404),
    "a missing object": ObjectNotFoundError("landing/orders/a.csv"),
    "a damaged table log": CorruptTableError("silver/orders: commit 3 is missing"),
}
TRANSIENT = {
    "connection refused": ConnectionRefusedError(111, "Connection refused"),
    "timeout": TimeoutError("timed out"),
    "S3 slow down": client_error("SlowDown", 503),
    "S3 internal error": client_error("InternalError", 500),
    "S3 throttling": client_error("ThrottlingException", 400),
    "endpoint unreachable": botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"),
    "HTTP transport": httpx.ConnectError("connection refused"),
    "commit conflict": WriteConflictError("silver/orders: another writer committed first"),
    "object store failure read through a parser": pa.ArrowInvalid("Generic S3 error: timed out"),
    "a source that is down": SourceError("PostgreSQL at db:5432 is unreachable"),
    "an error nobody expected": RuntimeError("something else"),
}


@pytest.mark.parametrize("error", CONTENT.values(), ids=CONTENT.keys())
def test_content_errors_fail_the_unit_alone(error):
    assert error_kind(error) == "content"


@pytest.mark.parametrize(
    "error",
    [ConfigurationError("unknown source(s) ['x']"), UnsafePathError("../landing leaves the lake")],
)
def test_a_configuration_error_is_neither_retried_nor_blamed_on_a_unit(error):
    assert error_kind(error) == "configuration"
    assert retry_if_transient(None, None, Failed(data=error)) is False


@pytest.mark.parametrize("error", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_and_unknown_errors_are_retried(error):
    assert error_kind(error) == "transient"


def test_a_duplicated_column_delta_cannot_store_is_a_content_error(local_lake):
    duplicated = pa.Table.from_arrays([pa.array(["1"]), pa.array(["2"])], names=["id", "id"])
    error = raised(lambda: lake.append(Table("raw", "bronze"), duplicated))
    assert isinstance(error, ContentError)
    assert "duplicate" in str(error)
    assert error_kind(error) == "content"
    assert not lake.exists(Table("raw", "bronze"))


@pytest.mark.parametrize(
    ("error", "retried"),
    [(TimeoutError("timed out"), True), (ContentError("duplicate column"), False),
     (CorruptTableError("damaged log"), False)],
)  # fmt: skip
def test_tasks_retry_only_what_a_retry_may_fix(error, retried):
    assert retry_if_transient(None, None, Failed(data=error)) is retried
