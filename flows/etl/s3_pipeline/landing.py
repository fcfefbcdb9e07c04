"""Landing files: which format a file is in, and how to stream it as all-text record batches.

Bronze keeps what was delivered, so every column is text (bad values too). A record that cannot
be parsed becomes a row with `_error` (why) and `_raw` (its text): nothing is dropped. Memory is
bounded by the batch size (and the longest single line), never by the file size.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flows.core import storage
from flows.core.errors import ContentError

Format = Literal["csv", "jsonl", "json", "parquet"]
ERROR_COLUMN = "_error"
RAW_COLUMN = "_raw"
MAX_BLOCK_BYTES = 1 << 30
CSV_BLOCK_BYTES = 1 << 20
"""The first CSV block size (a longer line restarts the parse with larger ones). Small blocks
keep pyarrow's streaming reader flat and fast: reading a 4M-row file held 152 MB with 1 MiB
blocks, 584 MB with 32 MiB ones, which were slower too."""
_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
}
_READ_BYTES = 1 << 20
Record = tuple[dict[str, Any] | None, str | None, str | None]
"""A parsed record, or None with the reason and the raw text."""


@dataclass(frozen=True)
class ParseOptions:
    """How to cut a file into batches."""

    batch_rows: int
    block_bytes: int = CSV_BLOCK_BYTES
    """CSV block size (CSV batches hold a block of rows, not `batch_rows`): a line longer than
    this restarts the parse with a larger block."""
    columns: tuple[str, ...] = ()
    """JSON keys known from an earlier attempt (keys first seen late restart the parse)."""


class ParseRestart(Exception):
    """Parsing must start again with other options; nothing has been committed."""

    def __init__(self, options: ParseOptions, why: str) -> None:
        super().__init__(why)
        self.options = options


def file_format(path: str) -> Format | None:
    """The format named by the extension (`.gz` allowed except on Parquet); None if unknown."""
    name = path.lower()
    compressed = name.endswith(".gz")
    name = name.removesuffix(".gz")
    for suffix, found in _SUFFIXES.items():
        if name.endswith(suffix):
            return None if compressed and found == "parquet" else found
    return None


def text_schema(columns: Iterable[str]) -> pa.Schema:
    """Data columns as text, then the parse error and raw text columns."""
    names = [c for c in columns if c not in (ERROR_COLUMN, RAW_COLUMN)]
    return pa.schema([(name, pa.string()) for name in [*names, ERROR_COLUMN, RAW_COLUMN]])


def decoded_text(values: pa.Array) -> tuple[pa.Array, list[bool]]:
    """Binary or typed values as UTF-8 text, and which rows were not valid UTF-8.

    Invalid bytes are kept as `\\xNN` escapes, so the row's content survives into quarantine.
    """
    if pa.types.is_string(values.type):
        return values, []
    if not (pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type)):
        return values.cast(pa.string()), []
    try:
        return values.cast(pa.string()), []
    except pa.ArrowInvalid:
        raw = values.to_pylist()
        bad = [v is not None and not _is_utf8(v) for v in raw]
        text = [None if v is None else v.decode("utf-8", "backslashreplace") for v in raw]
        return pa.array(text, pa.string()), bad


def text_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with every column as text in `schema`'s order; rows with bad bytes get `_error`."""
    columns: dict[str, pa.Array] = {}
    bad_columns: dict[int, list[str]] = {}
    for name in schema.names[:-2]:
        if name not in batch.schema.names:
            columns[name] = pa.nulls(batch.num_rows, pa.string())
            continue
        try:
            columns[name], bad = decoded_text(batch.column(name))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise ContentError(f"column {name!r} cannot be kept as text: {error}") from error
        for row, is_bad in enumerate(bad):
            if is_bad:
                bad_columns.setdefault(row, []).append(name)
    rows = range(batch.num_rows)
    columns[ERROR_COLUMN] = (
        pa.array(
            [_not_utf8(bad_columns[r]) if r in bad_columns else None for r in rows], pa.string()
        )
        if bad_columns
        else pa.nulls(batch.num_rows, pa.string())
    )
    columns[RAW_COLUMN] = pa.nulls(batch.num_rows, pa.string())
    return pa.RecordBatch.from_pydict(columns, schema=schema)


def error_batch(schema: pa.Schema, failures: list[tuple[str, str]]) -> pa.RecordBatch:
    """Rows that could not be parsed: `(reason, raw text)` each, data columns null."""
    rows = len(failures)
    columns = {name: pa.nulls(rows, pa.string()) for name in schema.names[:-2]}
    columns[ERROR_COLUMN] = pa.array([reason for reason, _ in failures], pa.string())
    columns[RAW_COLUMN] = pa.array([raw for _, raw in failures], pa.string())
    return pa.RecordBatch.from_pydict(columns, schema=schema)


def records_batch(records: list[Record], schema: pa.Schema) -> pa.RecordBatch:
    """Parsed JSON records as a text batch; raises KeyError naming keys `schema` lacks."""
    names = schema.names[:-2]
    unknown = {key for record, _, _ in records if record for key in record} - set(names)
    if unknown:
        raise KeyError(sorted(unknown))
    columns = {
        name: pa.array([_json_text(r.get(name)) if r else None for r, _, _ in records], pa.string())
        for name in names
    }
    columns[ERROR_COLUMN] = pa.array([error for _, error, _ in records], pa.string())
    columns[RAW_COLUMN] = pa.array([raw for _, _, raw in records], pa.string())
    return pa.RecordBatch.from_pydict(columns, schema=schema)


def json_record(line: bytes) -> Record:
    """One JSON-lines line parsed, or why it could not be."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not valid UTF-8", line.decode("utf-8", "backslashreplace")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"malformed JSON: {error.msg} at column {error.colno}", text
    if not isinstance(value, dict):
        return None, f"not a JSON object: {type(value).__name__}", text
    return value, None, None


def lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Non-blank lines from a byte stream; a line may span any number of chunks."""
    pending: list[bytes] = []
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending.append(chunk[start:end])
            line = b"".join(pending).rstrip(b"\r")
            pending.clear()
            if line.strip():
                yield line
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    last = b"".join(pending).rstrip(b"\r")
    if last.strip():
        yield last


def json_array_records(chunks: Iterable[bytes]) -> Iterator[Record]:
    """The elements of one top-level JSON array, decoded incrementally."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8")()
    buffer, position, index, opened, finished = "", 0, 0, False, False
    source = iter(chunks)
    while True:
        while position < len(buffer) and (buffer[position].isspace() or buffer[position] == ","):
            position += 1
        if not opened and position < len(buffer):
            if buffer[position] != "[":
                raise ContentError("a .json file must hold a JSON array or JSON lines")
            opened, position = True, position + 1
            continue
        if opened and position < len(buffer) and buffer[position] == "]":
            return
        try:
            value, end = decoder.raw_decode(buffer, position)
            if end == len(buffer) and not finished:
                raise json.JSONDecodeError("may continue", buffer, end)
        except json.JSONDecodeError as error:
            if finished:
                raise ContentError(
                    f"malformed JSON array at element {index}: {error.msg}"
                ) from None
            chunk = next(source, None)
            try:
                more = text_decoder.decode(chunk or b"", final=chunk is None)
            except UnicodeDecodeError as bad:
                raise ContentError(f"not valid UTF-8 near element {index}: {bad.reason}") from None
            buffer, position, finished = buffer[position:] + more, 0, chunk is None
            continue
        position, index = end, index + 1
        if isinstance(value, dict):
            yield value, None, None
        else:
            yield None, f"not a JSON object: {type(value).__name__}", json.dumps(value)


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _not_utf8(columns: list[str]) -> str:
    return f"not valid UTF-8 in {', '.join(columns)}"


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _chunks(stream: pa.NativeFile) -> Iterator[bytes]:
    while chunk := stream.read(_READ_BYTES):
        yield chunk


def _batched(items: Iterable[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def text_batches(path: str, fmt: Format, options: ParseOptions) -> pa.RecordBatchReader:
    """Stream the landing file at `path` (relative to the lake root) as text batches.

    Raises ContentError for a file that cannot be read as `fmt` (e.g. a truncated Parquet file)
    and ParseRestart when the parse must begin again with other options.
    """
    readers: dict[Format, Callable[[str, ParseOptions], pa.RecordBatchReader]] = {
        "csv": _csv_reader,
        "jsonl": _json_reader,
        "json": _json_reader,
        "parquet": _parquet_reader,
    }
    return readers[fmt](path, options)


def _csv_header(path: str, options: ParseOptions) -> list[str]:
    with storage.open_input_stream(path) as stream:
        first = next(lines(_chunks(stream)), b"")
    if len(first) > MAX_BLOCK_BYTES:
        raise ContentError(f"the header line is longer than {MAX_BLOCK_BYTES} bytes")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ContentError(f"the header line is not valid UTF-8: {error.reason}") from None
    try:
        return next(csv.reader([text]), [])
    except csv.Error as error:  # e.g. a carriage return inside the header line
        raise ContentError(f"unreadable CSV header: {error}") from None


def _csv_reader(path: str, options: ParseOptions) -> pa.RecordBatchReader:
    names = _csv_header(path, options)
    schema = text_schema(names)
    if not names:
        return pa.RecordBatchReader.from_batches(schema, iter(()))
    return pa.RecordBatchReader.from_batches(schema, _csv_batches(path, names, schema, options))


def _csv_batches(
    path: str, names: list[str], schema: pa.Schema, options: ParseOptions
) -> Iterator[pa.RecordBatch]:
    malformed: list[tuple[str, str]] = []

    def keep_malformed(row: pacsv.InvalidRow) -> str:
        reason = f"malformed CSV line: expected {row.expected_columns} fields, got"
        malformed.append((f"{reason} {row.actual_columns}", row.text))
        return "skip"

    with storage.open_input_stream(path) as stream:
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    skip_rows=1, column_names=names, block_size=options.block_bytes
                ),
                parse_options=pacsv.ParseOptions(invalid_row_handler=keep_malformed),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.binary() for name in names},
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            )
            for batch in reader:
                yield text_batch(batch, schema)
                if malformed:
                    yield error_batch(schema, malformed)
                    malformed.clear()
        except pa.ArrowInvalid as error:
            raise _csv_error(error, options) from error
    if malformed:
        yield error_batch(schema, malformed)


def _csv_error(error: pa.ArrowInvalid, options: ParseOptions) -> Exception:
    if "straddl" not in str(error):
        return ContentError(f"unreadable CSV: {error}")
    if options.block_bytes >= MAX_BLOCK_BYTES:
        return ContentError(f"a CSV line is longer than {MAX_BLOCK_BYTES} bytes")
    larger = replace(options, block_bytes=min(options.block_bytes * 8, MAX_BLOCK_BYTES))
    return ParseRestart(larger, f"a line is longer than {options.block_bytes} bytes")


def _json_reader(path: str, options: ParseOptions) -> pa.RecordBatchReader:
    stream = storage.open_input_stream(path)
    batches = _batched(_json_records(_chunks(stream)), options.batch_rows)
    try:
        first = next(batches, [])
    except BaseException:
        stream.close()
        raise
    keys = [key for record, _, _ in first if record for key in record]
    schema = text_schema(dict.fromkeys([*options.columns, *keys]))

    def all_batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in [first] if first else []:
                yield records_batch(batch, schema)
            for batch in batches:
                yield _json_batch(batch, schema, options)
        finally:
            stream.close()

    return pa.RecordBatchReader.from_batches(schema, all_batches())


def _json_batch(records: list[Record], schema: pa.Schema, options: ParseOptions) -> pa.RecordBatch:
    try:
        return records_batch(records, schema)
    except KeyError as unknown:
        new_keys = tuple(unknown.args[0])
        grown = replace(options, columns=(*schema.names[:-2], *new_keys))
        raise ParseRestart(grown, f"keys {list(new_keys)} first appear late") from None


def _json_records(chunks: Iterator[bytes]) -> Iterator[Record]:
    first = next(chunks, b"")
    rest = _prepend(first, chunks)
    if first.lstrip()[:1] == b"[":
        return json_array_records(rest)
    return (json_record(line) for line in lines(rest))


def _prepend(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from chunks


def _parquet_reader(path: str, options: ParseOptions) -> pa.RecordBatchReader:
    handle = storage.open_input_file(path)
    try:
        parquet = pq.ParquetFile(handle)
    except pa.ArrowInvalid as error:
        handle.close()
        raise ContentError(f"unreadable Parquet: {error}") from error
    schema = text_schema(parquet.schema_arrow.names)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in parquet.iter_batches(batch_size=options.batch_rows):
                yield text_batch(batch, schema)
        except pa.ArrowInvalid as error:
            raise ContentError(f"unreadable Parquet: {error}") from error
        finally:
            handle.close()

    return pa.RecordBatchReader.from_batches(schema, batches())
