"""Landing deliveries without the subject's records, in every format the pipeline reads (pure).

A delivery is rewritten whole in memory: erasure is rare and landing files are bounded by what a
source delivers at once. Records that are not the subject's keep their values; CSV quoting may
change (the content does not). Gzip output has no timestamp, so the same input gives the same bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.etl.forget.subject import Subject
from flows.etl.s3_pipeline.landing import Format, file_format

Filtered = tuple[bytes, int]
"""The content kept, and how many records were removed."""


def without_subject(path: str, data: bytes, subject: Subject) -> Filtered:
    """The delivery at `path` without the subject's records; unchanged bytes when none are."""
    fmt = file_format(path)
    if fmt is None:
        return data, 0
    compressed = path.lower().endswith(".gz")
    content = gzip.decompress(data) if compressed else data
    kept, removed = _FILTERS[fmt](content, subject)
    if not removed:
        return data, 0
    return (gzip.compress(kept, mtime=0) if compressed else kept), removed


def csv_without(content: bytes, subject: Subject) -> Filtered:
    """CSV rows whose id field or any field is the subject's are dropped; the header stays."""
    text = content.decode("utf-8", "surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return content, 0
    header, body = rows[0], rows[1:]
    kept = [row for row in body if not subject.owns(dict(zip(header, row, strict=False)))]
    if len(kept) == len(body):
        return content, 0
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows([header, *kept])
    return out.getvalue().encode("utf-8", "surrogateescape"), len(body) - len(kept)


def json_without(content: bytes, subject: Subject) -> Filtered:
    """JSON lines (or one JSON array) without the subject's records; unparsable lines that show
    the subject are dropped too."""
    if content.lstrip()[:1] == b"[":
        records = json.loads(content)
        kept = [r for r in records if not _owned_json(r, subject)]
        return json.dumps(kept, ensure_ascii=False).encode(), len(records) - len(kept)
    lines = content.splitlines(keepends=True)
    kept_lines = [line for line in lines if not _owned_line(line, subject)]
    return b"".join(kept_lines), len(lines) - len(kept_lines)


def parquet_without(content: bytes, subject: Subject) -> Filtered:
    """Parquet rows with the subject's id in the id column or the subject anywhere in text."""
    table = pq.read_table(io.BytesIO(content))
    owned = owned_rows(table, subject)
    removed = pc.sum(owned).as_py() or 0
    if not removed:
        return content, 0
    out = io.BytesIO()
    pq.write_table(table.filter(pc.invert(owned)), out)
    return out.getvalue(), removed


def owned_rows(table: pa.Table, subject: Subject) -> pa.ChunkedArray:
    """A mask of the rows that are the subject's (id column as text, every text column matched)."""
    owned = pa.chunked_array([pa.array([False] * table.num_rows, pa.bool_())])
    for name in table.column_names:
        column = table.column(name)
        if name == subject.id_column:
            as_text = pc.utf8_trim_whitespace(column.cast(pa.string()))
            owned = pc.or_(owned, pc.fill_null(pc.equal(as_text, subject.id_text), False))
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            found = pc.match_substring_regex(column, subject.text_pattern)
            owned = pc.or_(owned, pc.fill_null(found, False))
    return owned


def _owned_json(record: object, subject: Subject) -> bool:
    if isinstance(record, dict):
        return subject.owns(record)
    return bool(subject.in_text(json.dumps(record)))


def _owned_line(line: bytes, subject: Subject) -> bool:
    text = line.decode("utf-8", "replace")
    if not text.strip():
        return False
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return bool(subject.in_text(text))
    return _owned_json(record, subject)


_FILTERS: dict[Format, Callable[[bytes, Subject], Filtered]] = {
    "csv": csv_without,
    "jsonl": json_without,
    "json": json_without,
    "parquet": parquet_without,
}
