"""Quarantine rows marked resolved once their key lands valid in silver, so quarantine answers
"what is still wrong".

A reject is resolved by a delivery ingested after its own that brings its key valid, or by a
replay of its own delivery under a fixed contract; it then carries that delivery's path in
`_resolved_by` and the time in `_resolved_at` (one MERGE on the quarantine table). Only open rows
are looked at and set, so a re-run changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa

from flows.catalog import landing_sources
from flows.core import lake
from flows.core.casting import cast_columns
from flows.core.contracts import Table
from flows.core.lineage import BATCH_COLUMN, INGESTED_AT_COLUMN
from flows.core.quarantine import RESOLVED_AT_COLUMN, RESOLVED_BY_COLUMN, is_open
from flows.etl.s3_pipeline.transforms import LandingFile, conformed

TYPED = "typed:"
"""Prefix of a reject's key cast to the contract's type, beside the key as delivered (text)."""
REPLAYED = "_replayed"
FIXED_AT = "_fixed_ingested_at"


def key_schema(contract: Table) -> pl.Schema:
    assert contract.schema is not None
    frame = pl.from_arrow(contract.schema.empty_table())
    assert isinstance(frame, pl.DataFrame)
    return pl.Schema({name: frame.schema[name] for name in contract.key})


def typed_rejects(rejects: pl.DataFrame, contract: Table) -> pl.DataFrame:
    """Open rejects with their key also cast to the contract's types (`typed:<key>`); rows whose
    key is missing or cannot be cast are left out, since no valid row can ever match them."""
    keys = key_schema(contract)
    if any(name not in rejects.columns for name in keys):
        return pl.DataFrame()
    typed = cast_columns(rejects.select(pl.col(name).cast(pl.String) for name in keys), keys)
    return pl.concat(
        [rejects, typed.rename({name: TYPED + name for name in keys})], how="horizontal"
    ).drop_nulls([TYPED + name for name in keys])


def resolutions(
    rejects: pl.DataFrame, landed: pl.DataFrame, key: Iterable[str], *, at: datetime
) -> pl.DataFrame:
    """The open rejects (`typed_rejects`) a landed valid row fixes: their delivered key and
    `_batch_id`, with the first fixing delivery (`landed`: typed key, `_source`, `_batch_id`,
    `_ingested_at`, `_replayed`) in `_resolved_by` and `at` in `_resolved_at`.

    A delivery fixes a reject when it was ingested after the reject's own, or when it is the
    reject's own delivery replayed under the current contract.
    """
    names = list(key)
    if rejects.is_empty() or landed.is_empty():
        return pl.DataFrame()
    fixes = landed.rename({BATCH_COLUMN: "_fixed_batch", INGESTED_AT_COLUMN: FIXED_AT})
    joined = rejects.join(fixes, left_on=[TYPED + n for n in names], right_on=names)
    fixed = (pl.col(FIXED_AT) > pl.col(INGESTED_AT_COLUMN)) | (
        pl.col(REPLAYED) & (pl.col("_fixed_batch") == pl.col(BATCH_COLUMN))
    )
    return (
        joined.filter(fixed)
        .sort(FIXED_AT, "_source")
        .unique([*names, BATCH_COLUMN], keep="first", maintain_order=True)
        .select(
            *names,
            BATCH_COLUMN,
            pl.col("_source").alias(RESOLVED_BY_COLUMN),
            pl.lit(at, pl.Datetime("us", "UTC")).alias(RESOLVED_AT_COLUMN),
        )
    )


def replayed_rejects(old: pl.DataFrame, new: pl.DataFrame, key: Iterable[str]) -> pl.DataFrame:
    """A replayed delivery's rows in quarantine: those resolved before stay as they are; open
    ones whose key no longer fails stay open (for `resolutions` to mark); the rest are `new`'s,
    with today's reasons, except for keys resolved before."""
    names = list(key)
    if old.is_empty() or any(name not in old.columns for name in names):
        return new
    resolved = old.filter(~is_open(old.columns))
    still_failing = new.select(names) if not new.is_empty() else old.select(names).clear()
    passing_now = (
        old.filter(is_open(old.columns)).drop_nulls(names).join(still_failing, on=names, how="anti")
    )
    fresh = new.join(resolved.select(names), on=names, how="anti") if not new.is_empty() else new
    return pl.concat([resolved, passing_now, fresh], how="diagonal_relaxed")


def replace_replayed_rejects(contract: Table, batch_id: str, rejects: pa.Table) -> None:
    """A replayed delivery's rejects in quarantine become `replayed_rejects`, in one commit."""
    quarantine = contract.quarantine
    old = (
        lake.read(quarantine, where=pl.col(BATCH_COLUMN) == batch_id)
        if lake.exists(quarantine)
        else pl.DataFrame()
    )
    new = pl.DataFrame(pl.from_arrow(rejects)) if rejects.num_rows else pl.DataFrame()
    rows = replayed_rejects(old, new, contract.key)
    if rows.height:
        lake.replace_where(quarantine, rows.to_arrow(), where={BATCH_COLUMN: batch_id})
    elif lake.exists(quarantine):
        lake.delete(quarantine, where={BATCH_COLUMN: batch_id})


def open_rejects(contract: Table) -> pl.DataFrame:
    """The open rows of the table's quarantine (key, delivery, ingestion time), key typed."""
    quarantine = contract.quarantine
    if not contract.key or not lake.exists(quarantine):
        return pl.DataFrame()
    scan = lake.scan(quarantine)
    columns = scan.collect_schema().names()
    wanted = [*contract.key, BATCH_COLUMN, INGESTED_AT_COLUMN]
    if any(name not in columns for name in wanted):
        return pl.DataFrame()
    return typed_rejects(scan.filter(is_open(columns)).select(wanted).collect(), contract)


def landed_keys(
    contract: Table, file: LandingFile, rejects: pl.DataFrame, replayed: bool
) -> pl.DataFrame:
    """Keys of open `rejects` that `file`'s bronze rows now bring valid, with the delivery."""
    keys = key_schema(contract)
    wanted = rejects.select(pl.col(TYPED + n).alias(n) for n in keys).unique()
    found: list[pl.DataFrame] = []
    for batch in lake.read_batches(contract.bronze, where={BATCH_COLUMN: file.batch_id}):
        frame = pl.DataFrame(pl.from_arrow(batch))
        if any(name not in frame.columns for name in keys):
            continue
        typed = cast_columns(frame.select(pl.col(n).cast(pl.String) for n in keys), keys)
        rows = typed.with_row_index("_row").join(wanted, on=list(keys), how="semi")["_row"]
        if rows.is_empty():
            continue
        valid, _ = conformed(contract, pa.Table.from_batches([batch.take(rows.to_arrow())]))
        found.append(
            pl.DataFrame(pl.from_arrow(valid.select(list(keys)))).with_columns(
                pl.lit(file.path).alias("_source"),
                pl.lit(file.batch_id).alias(BATCH_COLUMN),
                pl.lit(frame[INGESTED_AT_COLUMN][0]).alias(INGESTED_AT_COLUMN),
                pl.lit(replayed).alias(REPLAYED),
            )
        )
    return pl.concat(found) if found else pl.DataFrame()


def resolve_rejects(files: Iterable[LandingFile], replay: frozenset[str]) -> list[lake.WriteResult]:
    """Mark resolved the open rejects of each source that `files` (conformed into silver by this
    run; `replay` holds the batch ids replayed) brought valid: one commit per quarantine table."""
    by_source: dict[str, list[LandingFile]] = {}
    for file in files:
        by_source.setdefault(file.source, []).append(file)
    results = []
    for source, delivered in sorted(by_source.items()):
        contract = landing_sources()[source]
        rejects = open_rejects(contract)
        if rejects.is_empty():
            continue
        landed = [landed_keys(contract, f, rejects, f.batch_id in replay) for f in delivered]
        found = [keys for keys in landed if keys.height]
        valid = pl.concat(found, how="vertical_relaxed") if found else pl.DataFrame()
        fixed = resolutions(rejects, valid, contract.key, at=datetime.now(UTC))
        if fixed.height:
            results.append(
                lake.update_matched(
                    contract.quarantine,
                    fixed.to_arrow(),
                    on=[*contract.key, BATCH_COLUMN],
                    columns=[RESOLVED_BY_COLUMN, RESOLVED_AT_COLUMN],
                )
            )
    return results
