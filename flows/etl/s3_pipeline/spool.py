"""A delivery's conformed rows, from its parse to silver: each delivery is parsed and checked once.

While a delivery streams into bronze, each batch is also split on the contract; the valid rows go
to a local Arrow IPC file and the rejects stay in memory (they are few). Silver then reads that
file instead of reading bronze back. The spool is a cache of this process: a delivery conformed
elsewhere (another worker, a resumed run, a replay) is spooled again from bronze, so both ways
give the same rows.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa

from flows.core.contracts import Table
from flows.etl.s3_pipeline.transforms import conformed


class Spool:
    """Conformed rows of one delivery: valid rows on local disk, rejects in memory."""

    def __init__(self, contract: Table, batch_rows: int) -> None:
        assert contract.schema is not None
        self._contract = contract
        self._schema = contract.schema
        self._batch_rows = batch_rows
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._path = _folder() / f"{uuid.uuid4().hex}.arrow"
        self._writer: pa.ipc.RecordBatchFileWriter | None = pa.ipc.new_file(
            str(self._path), self._schema
        )
        self._rejects: list[pl.DataFrame] = []
        self.valid_rows = 0

    def add(self, bronze: pa.RecordBatch) -> None:
        """Take bronze rows; they are split on the contract `batch_rows` at a time (a split
        costs the same for a few rows as for thousands)."""
        assert self._writer is not None, "a closed spool takes no rows"
        self._pending.append(bronze)
        self._pending_rows += bronze.num_rows
        if self._pending_rows >= self._batch_rows:
            self._split_pending()

    def close(self) -> Spool:
        """Split what is pending and finish the file; then the spool can be read."""
        if self._writer is not None:
            self._split_pending()
            self._writer.close()
            self._writer = None
        return self

    def _split_pending(self) -> None:
        assert self._writer is not None
        if not self._pending:
            return
        valid, rejects = conformed(self._contract, pa.Table.from_batches(self._pending))
        self._pending, self._pending_rows = [], 0
        if valid.num_rows:
            self._writer.write_table(valid)
            self.valid_rows += valid.num_rows
        if rejects.num_rows:
            self._rejects.append(pl.DataFrame(pl.from_arrow(rejects)))

    def valid(self, columns: Sequence[str] | None = None) -> pa.RecordBatchReader:
        """The valid rows (only `columns`, if given) in delivery order, read a batch at a time.

        Not memory-mapped: mapped pages would count as this process's memory until the whole
        file had been read.
        """
        assert self._writer is None, "close the spool before reading it"
        names = self._schema.names if columns is None else list(columns)
        options = pa.ipc.IpcReadOptions(
            included_fields=[self._schema.get_field_index(n) for n in names]
        )
        source = pa.ipc.open_file(pa.OSFile(str(self._path)), options=options)
        batches = (source.get_batch(i) for i in range(source.num_record_batches))
        return pa.RecordBatchReader.from_batches(source.schema, batches)

    def rejects(self) -> pa.Table:
        """Every reject with its `_reason`, in delivery order."""
        if not self._rejects:
            return pa.table({})
        return pl.concat(self._rejects, how="diagonal_relaxed").to_arrow()

    def discard(self) -> None:
        self._pending = []
        self.close()
        self._path.unlink(missing_ok=True)


def spooled(contract: Table, batches: Iterable[pa.RecordBatch], batch_rows: int) -> Spool:
    """Bronze rows (e.g. read back from the table) conformed into a new, closed spool."""
    spool = Spool(contract, batch_rows)
    try:
        for batch in batches:
            spool.add(batch)
    except BaseException:
        spool.discard()
        raise
    return spool.close()


def teed(
    batches: Iterable[pa.RecordBatch], spool: Spool, failures: list[BaseException]
) -> Iterator[pa.RecordBatch]:
    """`batches` unchanged, each also added to `spool`. A batch the spool cannot take (its rows
    break the contract in a way the conform step reports as a failed delivery) stops the
    spooling, not the stream: the error goes to `failures` and silver reads bronze back."""
    for batch in batches:
        if not failures:
            try:
                spool.add(batch)
            except Exception as error:
                failures.append(error)
        yield batch
    if not failures:
        try:
            spool.close()
        except Exception as error:
            failures.append(error)


_KEPT: dict[tuple[str, str], Spool] = {}
_KEPT_LOCK = threading.Lock()


def keep(bronze: str, batch_id: str, spool: Spool) -> None:
    """Hold the closed spool of delivery `batch_id` of the bronze table at `bronze` for silver."""
    with _KEPT_LOCK:
        earlier = _KEPT.pop((bronze, batch_id), None)
        _KEPT[(bronze, batch_id)] = spool.close()
    if earlier is not None:
        earlier.discard()


def take(bronze: str, batch_id: str) -> Spool | None:
    """The spool kept for the delivery, now the caller's to discard; None if this process has
    none."""
    with _KEPT_LOCK:
        return _KEPT.pop((bronze, batch_id), None)


_FOLDER: list[Path] = []


def _folder() -> Path:
    with _KEPT_LOCK:
        if not _FOLDER:
            folder = Path(tempfile.mkdtemp(prefix="lake-spool-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            _FOLDER.append(folder)
        return _FOLDER[0]
