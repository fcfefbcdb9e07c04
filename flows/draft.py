"""Draft a table declaration from a landing file: types inferred from a sample of rows,
nullability from the data, a key suggested from uniqueness, a time column and a partitioning
suggested. Edit it, paste it into a category's `tables.py`, add it to `TABLES`.

    python -m flows.draft landing/refunds/2024-05-01.csv
    python -m flows.draft landing/refunds/part-0.parquet --name refunds --rows 50000
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from flows.core import storage
from flows.core.casting import cast_series
from flows.core.errors import LakeError
from flows.core.paths import safe_name

SAMPLE_ROWS = 10_000
_ARROW_TYPES = {
    pl.Int64: "pa.int64()",
    pl.Float64: "pa.float64()",
    pl.Boolean: "pa.bool_()",
    pl.Date: "pa.date32()",
    pl.String: "pa.string()",
}
_TIMESTAMP = "UTC_MICROS"
_TEXT_TARGETS: tuple[pl.DataType, ...] = (
    pl.Int64(),
    pl.Float64(),
    pl.Boolean(),
    pl.Date(),
    pl.Datetime("us", "UTC"),
)


@dataclass(frozen=True)
class Column:
    """One drafted column: its contract type and whether every sampled row had a value."""

    name: str
    arrow_type: str
    required: bool


def sample(path: str, rows: int = SAMPLE_ROWS) -> pl.DataFrame:
    """The first `rows` rows of a landing file (CSV, JSON lines, Parquet; gzip allowed), read
    from the start of the object only: a large delivery is never read whole."""
    if path.lower().endswith(".parquet"):
        with storage.open_input_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            first = next(parquet.iter_batches(batch_size=rows), None)
            arrow = pa.Table.from_batches([first]) if first else parquet.schema_arrow.empty_table()
        frame = pl.from_arrow(arrow)
        assert isinstance(frame, pl.DataFrame)
        return frame
    with storage.open_input_stream(path) as stream:
        head = first_lines(stream, rows + 1)  # the header and `rows` rows
    if path.lower().removesuffix(".gz").endswith((".jsonl", ".ndjson", ".json")):
        return pl.read_ndjson(io.BytesIO(head), infer_schema_length=rows)
    return pl.read_csv(io.BytesIO(head), infer_schema_length=rows, try_parse_dates=True)


def first_lines(stream: pa.NativeFile, count: int, block_bytes: int = 1 << 20) -> bytes:
    """The first `count` lines of `stream` (all of it if shorter), read block by block."""
    kept = bytearray()
    while kept.count(b"\n") < count and (block := stream.read(block_bytes)):
        kept += block
    lines = bytes(kept).split(b"\n")
    return b"\n".join(lines[:count]) if len(lines) > count else bytes(kept)


def typed(frame: pl.DataFrame) -> pl.DataFrame:
    """Text columns whose every value reads as a number, a boolean, a date or a timestamp under
    the contracts' casting rules, converted to the first such type."""
    converted = []
    for name, dtype in frame.schema.items():
        column = frame[name]
        if dtype == pl.String and column.drop_nulls().len():
            has_time = bool(column.str.contains(":").any())
            for target in _TEXT_TARGETS:
                if target == pl.Date and has_time:
                    continue
                read = cast_series(column.str.strip_chars(), target)
                if read.null_count() == column.null_count():
                    column = read
                    break
        converted.append(column.alias(name))
    return pl.DataFrame(converted)


def drafted_columns(frame: pl.DataFrame) -> list[Column]:
    """Each column's contract type (integers as int64, floats as float64, times as UTC micros)."""
    found = []
    for name, dtype in frame.schema.items():
        if dtype.is_integer():
            arrow_type = _ARROW_TYPES[pl.Int64]
        elif dtype.is_float():
            arrow_type = _ARROW_TYPES[pl.Float64]
        elif isinstance(dtype, pl.Datetime):
            arrow_type = _TIMESTAMP
        else:
            arrow_type = _ARROW_TYPES.get(dtype.base_type(), _ARROW_TYPES[pl.String])
        found.append(Column(name, arrow_type, frame[name].null_count() == 0))
    return found


def suggested_key(frame: pl.DataFrame) -> str | None:
    """A column with a value in every row, unique in the sample: an `*id` column first."""
    candidates = [
        name
        for name, dtype in frame.schema.items()
        if (dtype.is_integer() or dtype == pl.String)
        and frame[name].null_count() == 0
        and frame[name].n_unique() == frame.height
    ]
    named = [name for name in candidates if name.lower().endswith("id")]
    return next(iter(named or candidates), None)


def suggested_time_column(frame: pl.DataFrame) -> str | None:
    """The timestamp that orders versions of a row: `updated_at`-like names first."""
    stamps = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    preferred = [n for n in stamps if any(w in n.lower() for w in ("updated", "modified"))]
    return next(iter(preferred or stamps), None)


def suggested_partition(frame: pl.DataFrame) -> str | None:
    """A date column with few distinct days for the rows (about 100+ rows a day)."""
    dates = [n for n, t in frame.schema.items() if t == pl.Date]
    fitting = [n for n in dates if frame[n].n_unique() * 100 <= max(frame.height, 100)]
    return next(iter(fitting), None)


def declaration(name: str, frame: pl.DataFrame) -> str:
    """Python source of a `Table` declaration for `frame`, ready to paste and edit."""
    safe_name(name)
    columns = drafted_columns(frame)
    key, newest, partition = (suggested_key(frame), suggested_time_column(frame),
                              suggested_partition(frame))  # fmt: skip
    fields = [
        f'            required("{c.name}", {c.arrow_type}),' if c.required or c.name == key
        else f'            ("{c.name}", {c.arrow_type}),'
        for c in columns
    ]  # fmt: skip
    options = [f'    key=("{key}",),' if key else "    # key=(...),  no column was unique"]
    if partition:
        options.append(f'    partition_by=("{partition}",),')
    if newest:
        options.append(f'    newest_by="{newest}",')
    return "\n".join(
        [
            f"# Drafted from {frame.height} sampled rows: check types, key and checks.",
            f"{name.upper()} = Table(",
            f'    "{name}",',
            '    layer="silver",',
            "    schema=pa.schema(",
            "        [",
            *fields,
            "        ]",
            "    ),",
            *options,
            "    checks=(),  # between(...), one_of(...), matches(...)",
            f'    description="{name}: TODO what one row is.",',
            "    ingested=True,",
            ")",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m flows.draft",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", help="a landing file, relative to the lake root")
    parser.add_argument("--name", help="the table's name (default: the file's folder)")
    parser.add_argument("--rows", type=int, default=SAMPLE_ROWS, help="rows to sample")
    args = parser.parse_args(argv)
    folder, _, file = args.path.rstrip("/").rpartition("/")
    name = args.name or folder.rpartition("/")[2] or file.partition(".")[0]
    try:
        print(declaration(name, typed(sample(args.path, args.rows))))
    except (LakeError, pl.exceptions.PolarsError, pa.ArrowException, OSError) as error:
        parser.exit(2, f"cannot draft a contract from {args.path}: {error}\n")


if __name__ == "__main__":
    main()
