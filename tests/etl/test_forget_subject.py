import gzip
import io
import json
from datetime import UTC, datetime

import boto3
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows import samples
from flows.catalog import CUSTOMERS, ERASURES, LANDING_FILES, ORDERS, PRODUCTS
from flows.core import lake, storage
from flows.core.contracts import Table
from flows.core.errors import ErasureIncomplete, TableNotFoundError
from flows.core.settings import get_settings
from flows.etl.forget import verify
from flows.etl.forget.deliveries import without_subject
from flows.etl.forget.places import PlaceErasure
from flows.etl.forget.record import Evidence, Request, certificate, erasure_records
from flows.etl.forget.subject import Subject
from flows.etl.forget_subject import forget_subject
from flows.etl.s3_pipeline.flow import s3_data_pipeline
from flows.etl.s3_pipeline.samples import seed_landing

SUBJECT = 7
EMAIL = "customer7@example.com"
OTHER_EMAIL = "customer8@example.com"
subject = Subject("customer_id", SUBJECT, (EMAIL,))


# --- the lake primitives the erasure uses ---------------------------------------------------


def test_delete_removes_matching_rows_in_one_commit_and_a_miss_commits_nothing(local_lake):
    lake.merge(CUSTOMERS, samples.customers(20))
    before = lake.version(CUSTOMERS)
    result = lake.delete(CUSTOMERS, where={"customer_id": 3})
    assert (result.operation, result.rows, result.version) == ("DELETE", 1, before + 1)
    assert lake.history(CUSTOMERS, limit=1)[0]["operation"] == "DELETE"
    assert 3 not in lake.read(CUSTOMERS)["customer_id"].to_list()
    miss = lake.delete(CUSTOMERS, where={"customer_id": 999})
    assert (miss.operation, miss.rows, miss.version) == ("NOOP", 0, before + 1)


def test_delete_without_a_condition_is_refused(local_lake):
    lake.merge(CUSTOMERS, samples.customers(5))
    with pytest.raises(ValueError, match="needs a condition"):
        lake.delete(CUSTOMERS, where={})
    with pytest.raises(ValueError, match="needs a condition"):
        lake.delete_matching(CUSTOMERS, values={})


def test_delete_matching_removes_a_value_or_a_pattern_match_in_one_commit(local_lake):
    lake.merge(CUSTOMERS, samples.customers(20))
    result = lake.delete_matching(
        CUSTOMERS, values={"customer_id": [3]}, patterns={"email": subject.text_pattern}
    )
    assert (result.operation, result.rows) == ("DELETE", 2)
    assert sorted(set(range(1, 21)) - set(lake.read(CUSTOMERS)["customer_id"])) == [3, 7]


def test_vacuum_with_retention_zero_makes_old_versions_unreadable(local_lake):
    loaded = lake.merge(CUSTOMERS, samples.customers(20)).version
    lake.delete(CUSTOMERS, where={"customer_id": 3})
    assert lake.vacuum(CUSTOMERS, retention_hours=168) == []  # within retention: kept
    assert lake.read(CUSTOMERS, version=loaded).height == 20
    removed = lake.vacuum(CUSTOMERS, retention_hours=0, enforce_retention=False)
    assert len(removed) == 1
    with pytest.raises(Exception, match=r"(?i)not found|no such file"):
        lake.read(CUSTOMERS, version=loaded)
    assert lake.read(CUSTOMERS).height == 19


def test_a_table_written_under_an_older_contract_gets_its_new_nullable_columns(local_lake):
    added = ["kind", "versions_deleted", "copies_until", "objects_checked", "verified"]
    kept = [field for field in ERASURES.schema if field.name not in added]
    older = Table(ERASURES.name, ERASURES.layer, schema=pa.schema(kept))
    lake.append(older, erasure_records([], evidence()).select(older.schema.names))
    assert lake.add_missing_columns(ERASURES) == added
    assert lake.history(ERASURES, limit=1)[0]["operation"] == "ADD COLUMN"
    lake.append(ERASURES, erasure_records([], evidence()))
    assert lake.read(ERASURES).height == 4
    assert lake.add_missing_columns(ERASURES) == []


def test_vacuum_below_the_minimum_retention_is_refused_by_default(local_lake):
    lake.merge(CUSTOMERS, samples.customers(5))
    with pytest.raises(Exception, match=r"(?i)retention"):
        lake.vacuum(CUSTOMERS, retention_hours=0)


# --- recognising the subject (pure) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("7,Customer 7,customer7@example.com,DE", 1),
        ("<td>CUSTOMER7@example.com</td>", 1),
        ("xcustomer7@example.com", 0),
        ("customer7@example.com.au", 0),
        ("customer77@example.com", 0),
        ('{"customer_id": 7, "x": 1}', 1),
        ('{"customer_id":"7"}', 1),
        ('{"customer_id": 70}', 0),
        ("order 7 for customer 7", 0),
    ],
)
def test_the_subject_is_its_id_as_a_json_member_or_its_email_as_a_whole_token(text, found):
    assert subject.in_text(text) == found


def test_a_record_is_the_subjects_by_its_id_or_its_email_in_any_field():
    assert subject.owns({"customer_id": " 7 ", "email": None})
    assert subject.owns({"customer_id": "x7", "note": f"mail {EMAIL.upper()}"})
    assert not subject.owns({"customer_id": "70", "email": OTHER_EMAIL})


def test_redaction_replaces_the_email_and_the_id_member():
    text = f'<p>{EMAIL}</p> {{"customer_id": 7, "email": "{EMAIL}"}} {OTHER_EMAIL}'
    redacted = subject.redact(text)
    assert subject.in_text(redacted) == 0
    assert OTHER_EMAIL in redacted


def test_the_reference_is_stable_and_does_not_contain_the_id():
    assert Subject("customer_id", 12345).reference == Subject("customer_id", 12345).reference
    assert Subject("customer_id", 12345).reference != Subject("customer_id", 12346).reference
    assert "12345" not in Subject("customer_id", 12345).reference


# --- landing deliveries without the subject (pure) ------------------------------------------

CSV = (
    b"customer_id,name,email\n"
    b'7,"Customer 7",customer7@example.com\n'
    b"8,Customer 8,customer8@example.com\n"
    b"x,Bad Id,customer7@example.com\n"
)
JSON_LINES = (
    b'{"customer_id": 7, "email": "customer7@example.com"}\n'
    b'{"customer_id": 8, "email": "customer8@example.com"}\n'
    b'{"customer_id": "x", "email": "customer7@example.com"\n'  # malformed: kept only if not theirs
)


def _parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("landing/customers/a.csv", CSV),
        ("landing/customers/a.csv.gz", gzip.compress(CSV)),
        ("landing/customers/a.jsonl", JSON_LINES),
        ("landing/customers/a.json", json.dumps([{"customer_id": 7}, {"customer_id": 8}]).encode()),
        ("landing/customers/a.parquet", _parquet(samples.customers(10))),
    ],
    ids=["csv", "csv.gz", "jsonl", "json-array", "parquet"],
)
def test_a_delivery_keeps_everyone_but_the_subject_in_its_format(path, data):
    kept, removed = without_subject(path, data, subject)
    assert removed >= 1
    assert verify.occurrences(path, kept, subject) == 0
    assert verify.occurrences(path, data, subject) >= removed
    content = gzip.decompress(kept) if path.endswith(".gz") else kept
    if path.endswith(".parquet"):
        assert pq.read_table(io.BytesIO(kept))["customer_id"].to_pylist() == [
            i for i in range(1, 11) if i != SUBJECT
        ]
    else:
        assert b'"customer_id": 8' in content or b"8," in content


def test_a_delivery_without_the_subject_keeps_its_bytes():
    data = gzip.compress(CSV.replace(b"7", b"9"))
    assert without_subject("landing/customers/a.csv.gz", data, subject) == (data, 0)


# --- the independent verification (pure) ----------------------------------------------------


def test_verification_reads_csv_ids_parquet_columns_and_gzip():
    assert verify.occurrences("x.csv", b"customer_id,n\n7,a\n8,b\n", subject) == 1
    assert verify.occurrences("x.csv.gz", gzip.compress(b"customer_id\n 7\n"), subject) == 1
    table = pa.table({"customer_id": [7, 8], "_raw": [None, f"8,{EMAIL}"]})
    assert verify.occurrences("t/part-0.parquet", _parquet(table), subject) == 2
    assert verify.occurrences("t/part-0.parquet", _parquet(table.slice(1, 0)), subject) == 0


def test_verification_takes_delta_statistics_as_bounds_not_records():
    stats = b'{"add":{"stats":"{\\"minValues\\":{\\"customer_id\\":7}}"}}'
    assert verify.occurrences("silver/orders/_delta_log/0.json", stats, subject) == 0
    assert verify.occurrences("silver/customers/_delta_log/0.json", EMAIL.encode(), subject) == 1


# --- the evidence (pure) --------------------------------------------------------------------

REQUEST = Request("e1", "ref", "dpo", "T-1", "run", datetime(2024, 1, 1, tzinfo=UTC))


def evidence(findings=(), refused=False):
    scan = verify.Verification(42, tuple(verify.Finding(f, 1) for f in findings))
    return Evidence(REQUEST, storage.VersionCleanup(3, refused), scan, retention_days=30)


def test_erasure_records_fit_the_contract_and_hold_no_personal_data():
    places = [PlaceErasure("silver/customers", "table", 1, 1, 3)]
    records = erasure_records(places, evidence())
    assert ERASURES.conform(records.to_arrow()).num_rows == 3
    assert records["kind"].to_list() == ["table", "versions", "verification"]
    assert records["verified"].to_list() == [True] * 3
    assert records["objects_checked"].to_list() == [42] * 3
    assert records["copies_until"].null_count() == 3


def test_a_bucket_that_refuses_version_deletes_records_until_when_copies_remain():
    records = erasure_records([], evidence(refused=True))
    assert records["copies_until"].to_list()[0] == datetime(2024, 1, 31, tzinfo=UTC)
    assert "remain until 2024-01-31" in certificate([], evidence(refused=True))


def test_the_certificate_says_verified_or_names_where_data_remains():
    places = [PlaceErasure("landing/customers/c.csv", "landing", 2, 1)]
    assert "Verified: no trace" in certificate(places, evidence())
    failed = certificate(places, evidence(findings=["landing/x.csv"]))
    assert "NOT verified" in failed
    assert "landing/x.csv" in failed


# --- the flow, on both lakes ----------------------------------------------------------------

MALFORMED = (
    b'{"customer_id": "seven", "name": "Customer 7", "email": "customer7@example.com",'
    b' "country": "DE", "segment": "consumer", "signup_date": "2024-01-01",'
    b' "updated_at": "2024-01-01T00:00:00Z"}\n'
    b'{"customer_id": 7, "email": "customer7@example.com"\n'
)


def everything_in_the_lake() -> list[bytes]:
    """Every object's content (every version on S3), gunzipped: read here without the flow's code."""
    settings = get_settings()
    if not settings.is_s3:
        return [
            gzip.decompress(d) if d[:2] == b"\x1f\x8b" else d
            for path in storage.list_objects("")
            if (d := storage.read_bytes(path))
        ]
    bucket, _, prefix = settings.root.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=settings.endpoint_url)
    versions = client.list_object_versions(Bucket=bucket, Prefix=prefix)["Versions"]
    bodies = [
        client.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
        for v in versions
    ]
    return [gzip.decompress(d) if d[:2] == b"\x1f\x8b" else d for d in bodies]


def subject_ids_in_tables() -> int:
    found = 0
    for table in (CUSTOMERS, CUSTOMERS.bronze, CUSTOMERS.quarantine, ORDERS):
        ids = lake.read(table)["customer_id"].cast(pl.String).str.strip_chars()
        found += (ids == str(SUBJECT)).sum()
    return found


@pytest.fixture
def versioned_lake(any_lake):
    settings = get_settings()
    if settings.is_s3:
        bucket = settings.root.removeprefix("s3://").split("/")[0]
        boto3.client("s3", endpoint_url=settings.endpoint_url).put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
    return any_lake


def test_the_subject_is_found_nowhere_after_the_erasure_and_stays_gone(versioned_lake, prefect_api):
    seed_landing(rows=300)
    storage.write_bytes("landing/customers/late.jsonl", MALFORMED)
    s3_data_pipeline(sample_data=False)
    storage.write_bytes("_ops/data_docs/validations/customers.html", f"<td>{EMAIL}</td>".encode())
    assert subject_ids_in_tables() > 0
    assert any(EMAIL.encode() in content for content in everything_in_the_lake())
    customers = lake.read(CUSTOMERS).height
    manifest = lake.read(LANDING_FILES).height

    erased = forget_subject(SUBJECT, requested_by="dpo@example.com", request_ref="T-1")

    by_kind = {p.kind for p in erased if p.rows_deleted}
    assert by_kind == {"table", "landing", "document"}
    assert subject_ids_in_tables() == 0
    contents = everything_in_the_lake()
    assert not any(EMAIL.encode() in c.lower() for c in contents)
    assert any(OTHER_EMAIL.encode() in c for c in contents)
    assert lake.read(CUSTOMERS).height == customers - 1
    assert lake.read(PRODUCTS).height == 200
    assert b"7," not in storage.read_bytes("landing/customers/customers.csv").split(b"\n")[7]
    log = lake.read(ERASURES)
    assert log["verified"].all()
    assert log["occurrences_left"].to_list() == [0] * log.height
    assert log["subject_ref"].unique().to_list() == [subject.reference]
    assert log.filter(pl.col("kind") == "verification")["objects_checked"].item() > 10
    assert lake.read(LANDING_FILES).height == manifest

    if get_settings().is_s3:
        assert log["versions_deleted"].max() > 0  # noncurrent copies existed, and are gone
        return  # the re-run and the next pipeline run take the same code path on both lakes
    again = forget_subject(SUBJECT, requested_by="dpo@example.com", request_ref="T-1")
    assert [p for p in again if p.rows_deleted] == []
    assert {p.kind for p in again} == {"table"}

    summary = s3_data_pipeline(sample_data=False)
    assert (summary["files_ingested"], summary["files_done_before"]) == (0, manifest)
    assert subject_ids_in_tables() == 0
    assert lake.read(LANDING_FILES).height == manifest


def test_the_run_fails_naming_where_the_subject_remains(local_lake, prefect_api):
    lake.merge(CUSTOMERS, samples.customers(10))
    storage.write_bytes("models/notes.bin", b"\x80\x81" + EMAIL.encode())  # binary: not redacted
    with pytest.raises(ErasureIncomplete, match=r"models/notes\.bin"):
        forget_subject(SUBJECT, requested_by="dpo")
    assert lake.read(ERASURES)["verified"].unique().to_list() == [False]


def test_erasing_from_an_empty_lake_records_nothing(local_lake, prefect_api):
    with pytest.raises(TableNotFoundError):
        lake.read(CUSTOMERS)
    assert forget_subject(SUBJECT, requested_by="dpo") == []
    assert not lake.exists(ERASURES)


def test_an_erased_table_keeps_no_file_a_writer_left_behind_after_losing_a_commit_race(local_lake):
    from pathlib import Path

    from flows.etl.forget.places import erase_table

    lake.merge(CUSTOMERS, samples.customers(20))
    folder = Path(lake.location(CUSTOMERS).removeprefix("file://"))
    assert folder.is_dir()
    orphan = folder / "part-00000-lost-race-c000.parquet"  # in no commit
    pq.write_table(lake.read_arrow(CUSTOMERS), orphan)
    erase_table(CUSTOMERS, subject)
    assert not orphan.exists()
    assert lake.read(CUSTOMERS).height == 19
