"""Lake I/O: the only module that imports `deltalake`. The same calls for a folder and for `s3://`.

Every write is one Delta commit (readers see all of it or none of it; a `merge` or
`merge_batches` of rows that mix new and existing keys makes more, see there) and carries the
Prefect flow run in its commit metadata. On S3, delta-rs commits with conditional put, so
concurrent writers are safe without a lock table.

Every call is safe from several threads at once. delta-rs runs its I/O on one shared runtime, and
most of its calls wait for that runtime while holding the GIL; a write that streams a Python
reader has the runtime's worker threads call back into Python for each batch, so they wait for
the GIL. One of each at once deadlocks (seen in CI with two deliveries ingested from threads).
`_GATE` therefore gives a streaming write the process to itself, while other calls share it.
"""

from __future__ import annotations

import functools
import operator
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, ParamSpec, TypeAlias, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import (
    CommitFailedError,
    DeltaError,
    SchemaMismatchError,
    TableNotFoundError,
)

from flows.core import errors
from flows.core.contracts import Table
from flows.core.lineage import current_run
from flows.core.paths import lake_location
from flows.core.settings import get_settings, s3_storage_options

Scalar = str | int | float | bool | date | datetime
_LOG_RETENTION = "delta.logRetentionDuration"
TableData: TypeAlias = "pa.Table | pl.DataFrame"


_P = ParamSpec("_P")
_R = TypeVar("_R")


class _DeltaGate:
    """A shared/exclusive gate around delta-rs calls, preferring shared holders.

    Shared holders never wait for a waiting exclusive one, so a thread that holds the gate (a
    `read_batches` being consumed) can always make another call; an exclusive holder may make
    shared calls itself, but a shared holder cannot become exclusive.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._shared = 0
        self._exclusive_owner: int | None = None
        self._mine = threading.local()

    def _held_here(self) -> int:
        return int(getattr(self._mine, "shared", 0))

    @contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._changed:
            while self._exclusive_owner not in (None, me):
                self._changed.wait()
            self._shared += 1
            self._mine.shared = self._held_here() + 1
        try:
            yield
        finally:
            with self._changed:
                self._shared -= 1
                self._mine.shared = self._held_here() - 1
                self._changed.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if self._held_here():
            # two such threads would each wait for the other to let go
            raise RuntimeError("a streaming write inside another lake call (e.g. a read_batches)")
        with self._changed:
            while self._exclusive_owner is not None or self._shared:
                self._changed.wait()
            self._exclusive_owner = threading.get_ident()
        try:
            yield
        finally:
            with self._changed:
                self._exclusive_owner = None
                self._changed.notify_all()


_GATE = _DeltaGate()


def _gated(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """`function` holding the gate shared for its whole call."""

    @functools.wraps(function)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _GATE.shared():
            return function(*args, **kwargs)

    return call


@dataclass(frozen=True)
class WriteResult:
    """What one commit did."""

    table: str
    operation: str
    version: int
    rows: int
    inserted: int = 0
    updated: int = 0


def location(table: Table) -> str:
    """The table's folder or `s3://` URI under the configured lake root."""
    return lake_location(table.path)


def storage_options() -> dict[str, str]:
    return s3_storage_options(get_settings())


@_gated
def exists(table: Table) -> bool:
    return bool(DeltaTable.is_deltatable(location(table), storage_options=storage_options()))


@_gated
def open_table(table: Table, *, version: int | None = None) -> DeltaTable:
    """The `DeltaTable` itself, for operations this module does not wrap."""
    try:
        return DeltaTable(location(table), version=version, storage_options=storage_options())
    except TableNotFoundError as error:
        raise errors.TableNotFoundError(
            f"{table.path} does not exist under {get_settings().root}: run the flow that writes it"
        ) from error
    except DeltaError as error:
        raise errors.CorruptTableError(
            f"{table.path}: the Delta log cannot be replayed ({str(error).splitlines()[0]})."
            " A commit file in _delta_log after the last checkpoint is missing or damaged: restore"
            " it from a backup or bucket versioning; earlier versions stay readable by time travel"
        ) from error


@_gated
def version(table: Table) -> int:
    return int(open_table(table).version())


@_gated
def scan(table: Table, *, version: int | None = None) -> pl.LazyFrame:
    """A lazy Polars scan; filters and projections are pushed down into the Delta scan."""
    return pl.scan_delta(open_table(table, version=version))


@_gated
def read(
    table: Table,
    *,
    columns: Sequence[str] | None = None,
    where: pl.Expr | None = None,
    version: int | None = None,
) -> pl.DataFrame:
    """Read (part of) a table into Polars."""
    frame = scan(table, version=version)
    if where is not None:
        frame = frame.filter(where)
    if columns is not None:
        frame = frame.select(columns)
    return frame.collect()


def read_arrow(
    table: Table,
    *,
    columns: Sequence[str] | None = None,
    where: pl.Expr | None = None,
    version: int | None = None,
) -> pa.Table:
    return read(table, columns=columns, where=where, version=version).to_arrow()


def read_batches(
    table: Table,
    *,
    columns: Sequence[str] | None = None,
    batch_rows: int | None = None,
    where: Mapping[str, Scalar] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream a table in record batches; memory is bounded by the batch size.

    `where` (column = value, all of them) is pushed down: files whose statistics exclude it
    are not read.
    """
    with _GATE.shared():  # the dataset reads through delta-rs while it is consumed
        dataset = open_table(table).to_pyarrow_dataset()
        conditions = [pads.field(column) == value for column, value in (where or {}).items()]
        yield from dataset.to_batches(
            columns=list(columns) if columns is not None else None,
            filter=functools.reduce(operator.and_, conditions) if conditions else None,
            batch_size=batch_rows or get_settings().batch_rows,
            batch_readahead=1,  # pyarrow's defaults (16 batches of 4 files) hold millions of rows
            fragment_readahead=1,
        )


@_gated
def history(table: Table, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Commits, newest first, with their operation, metrics and the flow run that wrote them."""
    return list(open_table(table).history(limit))


@dataclass(frozen=True)
class Layout:
    """A table's physical state: what maintenance changes and what makes opening it slow."""

    table: str
    version: int
    data_files: int
    """Parquet files the current version reads."""
    data_bytes: int
    stored_files: int
    """Parquet files in the folder, including removed (time travel) and orphaned ones."""
    log_files: int
    """Commit files in `_delta_log`."""
    checkpoint_version: int | None
    """The newest checkpoint; opening the table replays only the commits after it."""

    @property
    def commits_to_replay(self) -> int:
        last = self.checkpoint_version
        return self.version - (last if last is not None else -1)


@dataclass(frozen=True)
class Compaction:
    """What one compaction (OPTIMIZE) commit did."""

    table: str
    version: int
    files_removed: int
    files_added: int


@_gated
def layout(table: Table) -> Layout:
    """Count the table's data files, stored files and log entries."""
    delta = open_table(table)
    added = pa.table(delta.get_add_actions(flatten=True))
    files = delta.to_pyarrow_dataset().filesystem
    stored = [
        info.path
        for info in files.get_file_info(pafs.FileSelector("", recursive=True))
        if not info.path.startswith("_delta_log") and info.path.endswith(".parquet")
    ]
    log = [info.base_name for info in files.get_file_info(pafs.FileSelector("_delta_log"))]
    checkpoints = [int(name.split(".")[0]) for name in log if ".checkpoint." in name]
    return Layout(
        table.path,
        int(delta.version()),
        added.num_rows,
        int(pc.sum(added.column("size_bytes")).as_py() or 0),
        len(stored),
        sum(1 for name in log if name.endswith(".json") and name[:1].isdigit()),
        max(checkpoints, default=None),
    )


@_gated
def appended_since(table: Table, version: int, *, until: int | None = None) -> pl.DataFrame:
    """Rows in the data files added after `version` (all rows for -1) up to `until` (latest).

    An incremental read, exact for appends; a commit that rewrites files (merge, compaction)
    returns their rows again, so a consumer must tolerate seeing a row twice.
    """
    current = open_table(table, version=until)
    seen = set() if version < 0 else _added_paths(open_table(table, version=version))
    dataset = current.to_pyarrow_dataset()
    fragments = [f for f in dataset.get_fragments() if f.path not in seen]
    new = pads.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)
    frame = pl.from_arrow(new.to_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


@_gated
def compact(
    table: Table, *, target_size_bytes: int | None = None, z_order: Sequence[str] = ()
) -> Compaction:
    """Rewrite small files into fewer large ones (Z-ordered by `z_order` if given); one commit.

    Data does not change: readers of any version see the same rows.
    """
    optimizer = open_table(table).optimize
    with _translated_errors(table):
        if z_order:
            metrics = optimizer.z_order(
                z_order, target_size=target_size_bytes, commit_properties=_commit_properties()
            )
        else:
            metrics = optimizer.compact(
                target_size=target_size_bytes, commit_properties=_commit_properties()
            )
    return Compaction(
        table.path,
        version(table),
        int(metrics.get("numFilesRemoved", 0)),
        int(metrics.get("numFilesAdded", 0)),
    )


@_gated
def checkpoint(table: Table) -> int:
    """Write a checkpoint at the current version, so opening the table stops replaying the log."""
    delta = open_table(table)
    delta.create_checkpoint()
    return int(delta.version())


@_gated
def expire_log(table: Table) -> None:
    """Delete commit files older than `delta.logRetentionDuration` (30 days) before a checkpoint."""
    open_table(table).cleanup_metadata()


@_gated
def forget_history(table: Table) -> int:
    """Make the current version the table's whole log: a checkpoint, then every older commit
    file deleted; returns the version kept.

    Commit files keep each added file's min/max statistics, so a value erased from the data
    (an email that was a file's minimum) would live on in the log. Only for an erasure, after a
    vacuum with retention 0 (time travel is over by then anyway); the table's log retention is
    put back afterwards.
    """
    delta = open_table(table)
    kept = delta.metadata().configuration.get(_LOG_RETENTION, "interval 30 days")
    with _translated_errors(table):
        delta.alter.set_table_properties({_LOG_RETENTION: "interval 0 seconds"})
        delta = open_table(table)
        delta.create_checkpoint()
        delta.cleanup_metadata()
        delta.alter.set_table_properties({_LOG_RETENTION: kept})
    return version(table)


def _added_paths(delta: DeltaTable) -> set[str]:
    return set(pa.table(delta.get_add_actions(flatten=True)).column("path").to_pylist())


@_gated
def append(table: Table, data: TableData) -> WriteResult:
    """Add rows in one commit."""
    arrow = _prepared(table, data)
    if arrow.num_rows == 0:
        return WriteResult(table.path, "NOOP", _version_or_minus_one(table), 0)
    _write(table, arrow, mode="append")
    return WriteResult(table.path, "WRITE", version(table), arrow.num_rows)


@_gated
def replace_where(table: Table, data: TableData, *, where: Mapping[str, Scalar]) -> WriteResult:
    """Replace the rows matching `where` (column = value, all of them) with `data`, in one commit.

    Writing a batch this way is idempotent: re-running it replaces its own rows instead of adding
    them again, and a crash before the commit leaves the table as it was.
    """
    arrow = _prepared(table, data)
    if not exists(table):
        return append(table, arrow)
    predicate = " AND ".join(f"{_identifier(c)} = {sql_literal(v)}" for c, v in where.items())
    _write(table, arrow, mode="overwrite", predicate=predicate)
    return WriteResult(table.path, "WRITE", version(table), arrow.num_rows)


@_gated
def committed(table: Table, app_id: str) -> bool:
    """Whether a commit carrying the Delta app transaction `app_id` is in the table."""
    return exists(table) and open_table(table).transaction_version(app_id) is not None


def append_once(table: Table, data: pa.Table | pa.RecordBatchReader, *, app_id: str) -> WriteResult:
    """Append in one commit that records the app transaction `app_id`; a no-op if it is there.

    Streams a `RecordBatchReader` without holding it in memory. Appends never conflict with
    each other, and a concurrent writer of the same `app_id` loses with WriteConflictError, so
    exactly one copy lands. An exception raised while reading `data` aborts the commit and is
    re-raised as it was. Other lake calls in this process wait while it streams (see `_GATE`),
    so `data` must not read the lake itself.
    """
    # Check and write against one snapshot: a commit of `app_id` after it is a conflict, while
    # a fresh snapshot taken by the write could already hold it and append a second copy. The
    # table is created first for the same reason: two writers creating it would both append.
    create_if_missing(table, data.schema)
    snapshot = open_table(table)
    with _GATE.shared():
        if snapshot.transaction_version(app_id) is not None:
            return WriteResult(table.path, "NOOP", int(snapshot.version()), 0)
    counted = _CountedBatches(data if isinstance(data, pa.RecordBatchReader) else data.to_reader())
    arguments: dict[str, Any] = {
        "mode": "append",
        "partition_by": list(table.partition_by) or None,
        "schema_mode": "merge" if table.schema is None else None,
        # row groups of a batch, so a reader streaming it back holds a batch, not ~1M rows
        "writer_properties": WriterProperties(max_row_group_size=get_settings().batch_rows),
        "commit_properties": CommitProperties(
            custom_metadata=current_run().commit_metadata(),
            app_transactions=[Transaction(app_id=app_id, version=1)],
        ),
    }
    try:
        with _GATE.exclusive(), _translated_errors(table):
            write_deltalake(snapshot, counted.reader(), **arguments)
    except Exception:
        if counted.error is not None:
            raise counted.error from None
        raise
    return WriteResult(table.path, "WRITE", version(table), counted.rows)


class _CountedBatches:
    """Counts the rows delta-rs pulls from a reader and keeps the reader's own exception."""

    def __init__(self, source: pa.RecordBatchReader) -> None:
        self._source = source
        self.rows = 0
        self.error: BaseException | None = None

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self._source.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._source:
                self.rows += batch.num_rows
                yield batch
        except BaseException as error:
            self.error = error
            raise


@_gated
def create_if_missing(table: Table, schema: pa.Schema | None = None) -> bool:
    """Create `table` empty, with its contract schema (or `schema` for a schema-on-read table),
    unless it exists; True if this call did.

    Write into a table that exists: then Delta detects two writers committing the same keys or
    app transaction at once. Creating a table by its first write is a blind append that a
    concurrent one cannot see.
    """
    columns = table.schema or schema
    if columns is None:
        raise errors.ContractViolation(f"{table.path} has no schema to create the table with")
    if exists(table):
        return False
    try:
        _write(table, columns.empty_table(), mode="append")
    except errors.WriteConflictError:
        if not exists(table):
            raise
        return False
    return True


@_gated
def add_missing_columns(table: Table) -> list[str]:
    """Add the contract's nullable columns that the stored table lacks (a contract grew one);
    returns their names. A required column cannot be added: the rows already stored have none."""
    if table.schema is None or not exists(table):
        return []
    stored = set(scan(table).collect_schema().names())
    missing = [f for f in table.schema if f.name not in stored]
    required = [f.name for f in missing if not f.nullable]
    if required:
        raise errors.ContractViolation(f"{table.path}: cannot add required column(s) {required}")
    if missing:
        with _translated_errors(table):
            open_table(table).alter.add_columns(
                list(DeltaSchema.from_arrow(pa.schema(missing)).fields),
                commit_properties=_commit_properties(),
            )
    return [f.name for f in missing]


@_gated
def overwrite_partitions(table: Table, data: TableData) -> WriteResult:
    """Replace exactly the partitions present in `data`; other partitions are untouched."""
    if not table.partition_by:
        raise errors.ContractViolation(f"{table.path} is not partitioned; use overwrite()")
    arrow = _prepared(table, data)
    if not exists(table):
        return append(table, arrow)
    predicate = partition_predicate(arrow, table.partition_by)
    if predicate is None:
        return WriteResult(table.path, "NOOP", version(table), 0)
    _write(table, arrow, mode="overwrite", predicate=predicate)
    return WriteResult(table.path, "WRITE", version(table), arrow.num_rows)


@_gated
def overwrite(table: Table, data: TableData) -> WriteResult:
    """Replace the whole table in one commit (earlier versions stay readable by time travel)."""
    arrow = _prepared(table, data)
    _write(table, arrow, mode="overwrite")
    return WriteResult(table.path, "WRITE", version(table), arrow.num_rows)


KEYS_APP_ID = "lake.keyed-write"
"""The Delta app transaction every keyed write (`merge`) records: two keyed writes that race
conflict on it, so an append decided on a snapshot commits only if no keyed write came after."""
MERGE_ATTEMPTS = 8


@_gated
def merge(table: Table, data: TableData) -> WriteResult:
    """Upsert on the table's key; with `newest_by`, an older row never wins.

    Rows whose key no target file can hold (by the files' key min/max statistics) are appended
    instead of merged: one commit when none can match, else an append of those rows, then a MERGE
    of the rest (two commits; a crash between them leaves a re-run to finish). Both commits
    record `KEYS_APP_ID`, so the append fails if another keyed write landed after the snapshot it
    was decided on; the decision is then made again on the new snapshot. A column the contract
    gained since the table was created is added to it (its older rows read it as null).
    """
    if not table.key:
        raise errors.ContractViolation(f"{table.path} declares no key to merge on")
    arrow = table.deduplicate(_prepared(table, data))
    if arrow.num_rows == 0:
        return WriteResult(table.path, "NOOP", _version_or_minus_one(table), 0)
    create_if_missing(table)  # then two first writers conflict instead of both appending
    with _keyed_writes(table):
        return _upsert(table, arrow)


def merge_batches(
    table: Table, rows: Callable[[Sequence[str] | None], pa.RecordBatchReader]
) -> WriteResult:
    """`merge` of every row `rows(None)` gives, as if they were one table, holding only their
    keys and `LAKE_MERGE_ROWS` rows in memory; `rows(names)` gives only those columns.

    The newest row of each key is appended, in one commit for all the partitions it touches,
    when no target file can hold its key; the others are merged `LAKE_MERGE_ROWS` at a time
    (after the append: a crash between them leaves a re-run to finish, as with `merge`). `rows`
    is called once per pass and must give the same rows each time without reading the lake:
    the append streams them while the process's other lake calls wait (see `_GATE`).
    """
    if not table.key:
        raise errors.ContractViolation(f"{table.path} declares no key to merge on")
    create_if_missing(table)  # then two first writers conflict instead of both appending
    newest = [table.newest_by] if table.newest_by else []
    keys = rows(list(dict.fromkeys([*table.key, *newest, *table.partition_by]))).read_all()
    latest = table.latest_rows(keys)
    appended = 0
    to_merge = latest
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        snapshot = open_table(table)
        may_match = rows_that_may_match(keys, _file_statistics(snapshot), table.key)
        new = pc.and_(latest, pc.invert(may_match))
        appended = int(pc.sum(new).as_py() or 0)
        if not appended:
            break
        partitions = _partition_count(keys.filter(new), table.partition_by)
        try:
            with _GATE.exclusive():
                _append_commit(table, snapshot, _kept(rows(None), new), partitions)
        except errors.WriteConflictError:
            if attempt == MERGE_ATTEMPTS:
                raise
            _spread_racers(attempt)
            continue
        to_merge = pc.and_(latest, pc.invert(new))
        break
    inserted, updated, merged = appended, 0, False
    for group in _grouped(_kept(rows(None), to_merge), get_settings().merge_rows):
        result = merge(table, group)
        inserted, updated = inserted + result.inserted, updated + result.updated
        merged = merged or result.operation == "MERGE"
    return WriteResult(
        table.path,
        "MERGE" if merged else "APPEND" if inserted else "NOOP",
        version(table),
        len(keys),
        inserted=inserted,
        updated=updated,
    )


def _kept(rows: pa.RecordBatchReader, keep: pa.BooleanArray) -> pa.RecordBatchReader:
    """The rows of `rows` where `keep` (one flag per row, in order) is true, still streaming."""

    def batches() -> Iterator[pa.RecordBatch]:
        offset = 0
        for batch in rows:
            flags = keep.slice(offset, batch.num_rows)
            offset += batch.num_rows
            if pc.any(flags).as_py():
                yield batch.filter(flags)

    return pa.RecordBatchReader.from_batches(rows.schema, batches())


def _grouped(rows: pa.RecordBatchReader, size: int) -> Iterator[pa.Table]:
    """Consecutive batches of `rows` as tables of about `size` rows (at least one batch each)."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in rows:
        held.append(batch)
        count += batch.num_rows
        if count >= size:
            yield pa.Table.from_batches(held, rows.schema)
            held, count = [], 0
    if held:
        yield pa.Table.from_batches(held, rows.schema)


def _keyed_writes(table: Table) -> threading.Lock:
    """One keyed write per table at a time in this process: racing threads would only make
    each other retry; other processes still race, and lose by conflict."""
    with _KEYED_WRITES_LOCK:
        return _KEYED_WRITES.setdefault(location(table), threading.Lock())


_KEYED_WRITES: dict[str, threading.Lock] = {}
_KEYED_WRITES_LOCK = threading.Lock()


def _upsert(table: Table, arrow: pa.Table) -> WriteResult:
    rows, inserted, updated = arrow.num_rows, 0, 0
    merged = False
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        snapshot = open_table(table)
        may_match = rows_that_may_match(arrow, _file_statistics(snapshot), table.key)
        try:
            new = arrow.filter(pc.invert(may_match))
            if new.num_rows:
                _append_commit(table, snapshot, new, _partition_count(new, table.partition_by))
                inserted += new.num_rows
                arrow = arrow.filter(may_match)  # appended: never again
            if arrow.num_rows:
                counts = _merge_commit(table, open_table(table), arrow)
                inserted, updated, merged = inserted + counts[0], updated + counts[1], True
            break
        except errors.WriteConflictError:
            if attempt == MERGE_ATTEMPTS:
                raise
            _spread_racers(attempt)
    return WriteResult(
        table.path,
        "MERGE" if merged else "APPEND",
        version(table),
        rows,
        inserted=inserted,
        updated=updated,
    )


def _spread_racers(attempt: int) -> None:
    """Wait a random, growing while before a keyed write's next attempt after a conflict."""
    time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))


def _keyed_commit() -> CommitProperties:
    return CommitProperties(
        custom_metadata=current_run().commit_metadata(),
        app_transactions=[Transaction(app_id=KEYS_APP_ID, version=time.time_ns())],
    )


def _merge_commit(table: Table, snapshot: DeltaTable, rows: pa.Table) -> tuple[int, int]:
    """MERGE `rows` into `snapshot`: (inserted, updated)."""
    equal_keys = [f"t.{_identifier(k)} = s.{_identifier(k)}" for k in table.key]
    # Bounding the target's keys by the source's lets delta-rs skip files by their statistics
    # before it scans: a 1M-row merge into 9M rows took 2.3 s and 1.7 GB without, 0.5 s and
    # 0.7 GB with.
    matched = " AND ".join([*equal_keys, *key_ranges(rows, table.key, alias="t")])
    newer = f"s.{_identifier(table.newest_by)} >= t.{_identifier(table.newest_by)}"
    with _translated_errors(table):
        metrics = (
            snapshot.merge(
                rows,
                predicate=matched,
                source_alias="s",
                target_alias="t",
                merge_schema=True,
                commit_properties=_keyed_commit(),
            )
            .when_matched_update_all(predicate=newer if table.newest_by else None)
            .when_not_matched_insert_all()
            .execute()
        )
    return int(metrics.get("num_target_rows_inserted", 0)), int(
        metrics.get("num_target_rows_updated", 0)
    )


def _append_commit(
    table: Table, snapshot: DeltaTable, rows: pa.Table | pa.RecordBatchReader, partitions: int
) -> None:
    """Append `rows` as a keyed write read at `snapshot`'s version: a conflict if a keyed write
    committed after it (a plain append never conflicts with another otherwise). `partitions` is
    how many partitions the rows touch."""
    with _translated_errors(table):
        write_deltalake(
            snapshot,
            rows,
            mode="append",
            partition_by=list(table.partition_by) or None,
            schema_mode="merge",
            target_file_size=max(_APPEND_BUFFER_BYTES // max(partitions, 1), _MIN_FILE_BYTES),
            writer_properties=WriterProperties(max_row_group_size=_APPEND_ROW_GROUP_ROWS),
            commit_properties=_keyed_commit(),
        )


_APPEND_BUFFER_BYTES = 64 << 20
"""What an append's writer may hold in all: it keeps a file open in every partition the rows
touch, in memory until the file reaches its target size, so the target shares this out (4M
orders over 90 days held 805 MB with delta-rs's defaults, 367 MB with 1 MiB files)."""
_MIN_FILE_BYTES = 1 << 20
_APPEND_ROW_GROUP_ROWS = 8_192
"""Rows of an open row group, held uncompressed in each open file."""


def _partition_count(data: pa.Table, columns: Sequence[str]) -> int:
    if not columns or data.num_rows == 0:
        return 1
    frame = pl.from_arrow(data.select(list(columns)))
    assert isinstance(frame, pl.DataFrame)
    return frame.n_unique()


def _file_statistics(snapshot: DeltaTable) -> pa.Table:
    return pa.table(snapshot.get_add_actions(flatten=True))


_STATISTICS_KINDS = (pa.types.is_integer, pa.types.is_date)
"""Key types whose file min/max are exact (delta-rs truncates long strings' statistics)."""


def rows_that_may_match(data: pa.Table, files: pa.Table, key: Sequence[str]) -> pa.Array:
    """Which rows of `data` a target row could share its key with, by the target's files.

    `files` holds one row per data file with `num_records` and, per column, `min.<column>` and
    `max.<column>` (or `partition.<column>`), as delta-rs's add actions give them. A row may match
    when each key column's value lies within some file's range of that column; a file without a
    usable range for a column spans every value. False only where no file can hold the key.
    """
    files = files.filter(pc.greater(files.column("num_records"), 0))
    if files.num_rows == 0:
        return pa.repeat(pa.scalar(False), data.num_rows)
    may_match = pl.repeat(True, data.num_rows, eager=True)
    for column in key:
        bounds = _column_bounds(files, column, data.schema.field(column).type)
        if bounds is None:
            continue
        may_match &= _within_any(pl.Series(data.column(column)), *bounds)
    return may_match.to_arrow()


def _column_bounds(
    files: pa.Table, column: str, kind: pa.DataType
) -> tuple[pl.Series, pl.Series] | None:
    """Each file's (lowest, highest) of `column`; None when some file bounds it not at all."""
    if not any(is_kind(kind) for is_kind in _STATISTICS_KINDS):
        return None
    names = files.column_names
    if f"partition.{column}" in names:
        low = high = files.column(f"partition.{column}")
    elif f"min.{column}" in names and f"max.{column}" in names:
        low, high = files.column(f"min.{column}"), files.column(f"max.{column}")
    else:
        return None
    if low.null_count or high.null_count:
        return None
    return pl.Series(low.cast(kind)), pl.Series(high.cast(kind))


def _within_any(values: pl.Series, lows: pl.Series, highs: pl.Series) -> pl.Series:
    """Whether each value lies in at least one [low, high] interval; null values never do."""
    # Sorted by low, the running maximum of high is the furthest any interval starting at or
    # before a value reaches: the value is inside one exactly when it is not beyond that.
    intervals = (
        pl.DataFrame({"low": lows, "high": highs})
        .sort("low")
        .with_columns(pl.col("high").cum_max())
    )
    probe = pl.DataFrame({"value": values}).with_row_index("row")
    found = (
        probe.sort("value")
        .join_asof(intervals, left_on="value", right_on="low", strategy="backward")
        .sort("row")
    )
    return (found["value"] <= found["high"]).fill_null(False)


@_gated
def update_matched(
    table: Table, data: pa.Table, *, on: Sequence[str], columns: Sequence[str]
) -> WriteResult:
    """Set `columns` of the rows whose `on` columns equal a row of `data`, in one commit (MERGE).

    `columns` the table lacks are added to its schema (Delta schema evolution): its other rows
    read them as null. Nothing is inserted.
    """
    if data.num_rows == 0:
        return WriteResult(table.path, "NOOP", _version_or_minus_one(table), 0)
    matched = " AND ".join(f"t.{_identifier(c)} = s.{_identifier(c)}" for c in on)
    with _translated_errors(table):
        metrics = (
            open_table(table)
            .merge(
                data.select([*on, *columns]),
                predicate=matched,
                source_alias="s",
                target_alias="t",
                merge_schema=True,
                commit_properties=_commit_properties(),
            )
            .when_matched_update({_identifier(c): f"s.{_identifier(c)}" for c in columns})
            .execute()
        )
    updated = int(metrics.get("num_target_rows_updated", 0))
    return WriteResult(table.path, "MERGE", version(table), data.num_rows, updated=updated)


@_gated
def delete(table: Table, *, where: Mapping[str, Scalar]) -> WriteResult:
    """Delete the rows matching `where` (column = value, all of them) in one commit.

    The files holding them are rewritten without them; the old files stay on storage (time
    travel) until `vacuum` removes them.
    """
    if not where:
        raise ValueError(f"{table.path}: delete needs a condition; use overwrite() to empty it")
    predicate = " AND ".join(_equals(column, value) for column, value in where.items())
    with _translated_errors(table):
        metrics = open_table(table).delete(predicate, commit_properties=_commit_properties())
    deleted = int(metrics.get("num_deleted_rows", 0))
    operation = "DELETE" if metrics.get("num_removed_files", 0) else "NOOP"
    return WriteResult(table.path, operation, version(table), deleted)


@_gated
def delete_matching(
    table: Table,
    *,
    values: Mapping[str, Sequence[Scalar]],
    patterns: Mapping[str, str] | None = None,
) -> WriteResult:
    """Delete, in one commit, the rows where any column holds one of its `values` or any column
    matches its regular expression in `patterns` (an erasure's "found anywhere")."""
    terms = [_equals(column, value) for column, options in values.items() for value in options]
    terms += [
        f"regexp_like({_identifier(column)}, {sql_literal(pattern)})"
        for column, pattern in (patterns or {}).items()
    ]
    if not terms:
        raise ValueError(f"{table.path}: delete needs a condition; use overwrite() to empty it")
    with _translated_errors(table):
        metrics = open_table(table).delete(
            " OR ".join(terms), commit_properties=_commit_properties()
        )
    deleted = int(metrics.get("num_deleted_rows", 0))
    operation = "DELETE" if metrics.get("num_removed_files", 0) else "NOOP"
    return WriteResult(table.path, operation, version(table), deleted)


@_gated
def vacuum(
    table: Table,
    *,
    retention_hours: int | None = None,
    enforce_retention: bool = True,
    full: bool = False,
) -> list[str]:
    """Physically remove files no longer referenced and older than the retention; their names.

    `enforce_retention=False` allows a retention below the table's minimum (7 days by default):
    only for an erasure, since it breaks time travel and readers still on an old version.
    `full=True` lists the folder, so it also removes orphans: files no commit mentions (left by
    a crashed writer), once they are older than the retention.
    """
    return list(
        open_table(table).vacuum(
            retention_hours=retention_hours,
            dry_run=False,
            enforce_retention_duration=enforce_retention,
            commit_properties=_commit_properties(),
            full=full,
        )
    )


def sql_literal(value: Scalar) -> str:
    """A SQL literal for a Delta predicate; strings are quoted and escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    return "'" + value.replace("'", "''") + "'"


_ORDERABLE_KINDS = (
    pa.types.is_integer,
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_date,
)


def key_ranges(data: pa.Table, columns: Sequence[str], *, alias: str) -> list[str]:
    """`alias.k >= lowest AND alias.k <= highest` of each integer, string or date column of
    `data` that holds a value; other types are left out (the range is an optimisation)."""
    ranges = []
    for column in columns:
        kind = data.schema.field(column).type
        if not any(is_kind(kind) for is_kind in _ORDERABLE_KINDS):
            continue
        bounds = pc.min_max(data.column(column)).as_py()
        if bounds["min"] is None:
            continue
        name = f"{alias}.{_identifier(column)}"
        ranges.append(f"{name} >= {sql_literal(bounds['min'])}")
        ranges.append(f"{name} <= {sql_literal(bounds['max'])}")
    return ranges


def partition_predicate(data: pa.Table, columns: Sequence[str]) -> str | None:
    """`(a = x AND b = y) OR ...` over the distinct partition values in `data`; None if empty."""
    combos = pl.from_arrow(data.select(list(columns)))
    assert isinstance(combos, pl.DataFrame)
    clauses = [
        "(" + " AND ".join(_equals(c, v) for c, v in zip(columns, row, strict=True)) + ")"
        for row in combos.unique(maintain_order=True).iter_rows()
    ]
    return " OR ".join(clauses) or None


def _equals(column: str, value: Scalar | None) -> str:
    if value is None:
        return f"{_identifier(column)} IS NULL"
    return f"{_identifier(column)} = {sql_literal(value)}"


def _identifier(name: str | None) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _prepared(table: Table, data: TableData) -> pa.Table:
    arrow = data.to_arrow() if isinstance(data, pl.DataFrame) else data
    return table.conform(arrow)


def _version_or_minus_one(table: Table) -> int:
    return version(table) if exists(table) else -1


@_gated
def restore(table: Table, *, to_version: int, metadata: Mapping[str, str]) -> WriteResult:
    """Bring `table` back to `to_version` in one new commit (Delta RESTORE), with `metadata` (who
    and why) beside the flow run in the commit; the versions in between stay in the history."""
    with _translated_errors(table):
        open_table(table).restore(
            to_version,
            commit_properties=CommitProperties(
                custom_metadata={**current_run().commit_metadata(), **metadata}
            ),
        )
    return WriteResult(table.path, "RESTORE", version(table), 0)


def _commit_properties() -> CommitProperties:
    return CommitProperties(custom_metadata=current_run().commit_metadata())


def _write(
    table: Table,
    data: pa.Table,
    *,
    mode: Literal["append", "overwrite"],
    predicate: str | None = None,
) -> None:
    arguments: dict[str, Any] = {
        "mode": mode,
        "predicate": predicate,
        "partition_by": list(table.partition_by) or None,
        "schema_mode": "merge" if table.schema is None else None,
        "description": table.description or None,
        "storage_options": storage_options(),
        "commit_properties": _commit_properties(),
    }
    with _translated_errors(table):
        write_deltalake(location(table), data, **arguments)


_CONTENT_ERROR_PREFIXES = ("Schema error", "Invalid data", "Cast error", "Parser error")
"""delta-rs errors about the data written (e.g. a duplicated column), not the store."""


@contextmanager
def _translated_errors(table: Table) -> Iterator[None]:
    try:
        yield
    except CommitFailedError as error:
        raise errors.WriteConflictError(
            f"{table.path}: another writer committed a conflicting change; re-run to apply on top"
            f" of it ({error})"
        ) from error
    except DeltaError as error:
        if isinstance(error, SchemaMismatchError) or str(error).startswith(_CONTENT_ERROR_PREFIXES):
            raise errors.ContentError(f"{table.path} cannot store this data: {error}") from error
        raise
