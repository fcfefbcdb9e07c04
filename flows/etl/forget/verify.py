"""The independent check after an erasure: every object of the lake read again, byte for byte.

It shares nothing with the code that deleted but the definition of the subject: files are read
straight from the folder or, on S3, every version of every object through boto3 (noncurrent ones
too); gzip is opened, CSV and JSON decoded, Parquet read column by column. It reports where the
subject's id (in an id column or as a JSON member) or an identifying value is still found.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.core.settings import LakeSettings, boto3_session
from flows.etl.forget.subject import Subject

DELTA_LOG = "_delta_log/"
"""Commit files hold per-file min/max statistics: an id there is a bound, not a record, so only
identifying values are looked for in them."""


@dataclass(frozen=True)
class Finding:
    """Where the subject is still found, and how often."""

    location: str
    occurrences: int


@dataclass(frozen=True)
class Verification:
    """What the scan read and what it found."""

    objects_checked: int
    findings: tuple[Finding, ...]

    @property
    def occurrences(self) -> int:
        return sum(f.occurrences for f in self.findings)


def occurrences(name: str, data: bytes, subject: Subject) -> int:
    """How many times the subject shows in one object's content, whatever its format."""
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError, zlib.error):
            data = gzip.decompress(data)
    if data[:4] == b"PAR1":
        try:
            return parquet_occurrences(data, subject, members=DELTA_LOG not in name)
        except (pa.ArrowInvalid, OSError):
            pass  # not readable as Parquet after all: searched as text below
    text = data.decode("utf-8", "replace")
    found = subject.in_text(text, members=DELTA_LOG not in name)
    if name.lower().removesuffix(".gz").endswith(".csv"):
        found += csv_id_occurrences(text, subject)
    return found


def csv_id_occurrences(text: str, subject: Subject) -> int:
    """Rows of a CSV text whose id column holds the subject's id."""
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, [])
    if subject.id_column not in header:
        return 0
    at = header.index(subject.id_column)
    return sum(1 for row in rows if len(row) > at and row[at].strip() == subject.id_text)


def parquet_occurrences(data: bytes, subject: Subject, *, members: bool = True) -> int:
    """Values of a Parquet file that are the subject's, read column by column (nested flattened)."""
    table = pq.read_table(io.BytesIO(data))
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    pattern = subject.text_pattern if members else subject.value_pattern
    found = 0
    for name in table.column_names:
        column = table.column(name)
        if name == subject.id_column:
            text = pc.utf8_trim_whitespace(column.cast(pa.string()))
            found += pc.sum(pc.equal(text, subject.id_text)).as_py() or 0
        elif pattern and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            found += pc.sum(pc.match_substring_regex(column, pattern)).as_py() or 0
    return int(found)


def lake_objects(settings: LakeSettings) -> Iterator[tuple[str, bytes]]:
    """Every object under the lake root as (location, content); on S3 every version of each."""
    if not settings.is_s3:
        for path in sorted(Path(settings.root).rglob("*")):
            if path.is_file():
                yield str(path.relative_to(settings.root)), path.read_bytes()
        return
    bucket, _, key_root = settings.root.removeprefix("s3://").partition("/")
    prefix = f"{key_root}/" if key_root else ""
    client = boto3_session(settings).client("s3", endpoint_url=settings.endpoint_url)
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            body = client.get_object(
                Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"]
            )["Body"].read()
            latest = "" if version["IsLatest"] else f" (noncurrent version {version['VersionId']})"
            yield version["Key"].removeprefix(prefix) + latest, body


def scan(settings: LakeSettings, subject: Subject) -> Verification:
    """Read every object (every version on S3) and report where the subject is still found."""
    checked = 0
    findings = []
    for location, data in lake_objects(settings):
        checked += 1
        if found := occurrences(location, data, subject):
            findings.append(Finding(location, found))
    return Verification(checked, tuple(findings))
