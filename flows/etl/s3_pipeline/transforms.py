"""Pure transforms of the S3 data pipeline: what to ingest, how bronze rows conform, gold tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from flows.core.contracts import REASON_COLUMN, Table
from flows.core.errors import ConfigurationError, UnsafePathError
from flows.core.lineage import fingerprint, stamp
from flows.core.paths import safe_relative
from flows.core.storage import StoredObject
from flows.etl.s3_pipeline.landing import ERROR_COLUMN, RAW_COLUMN, Format, file_format

DONE_STATUSES = frozenset({"done", "empty", "failed"})


@dataclass(frozen=True)
class LandingFile:
    """One delivery: a landing object identified by its path, size and content tag."""

    path: str
    source: str
    size: int
    tag: str
    format: Format | None

    @property
    def batch_id(self) -> str:
        return fingerprint(self.path, str(self.size), self.tag)


@dataclass(frozen=True)
class Plan:
    """What this run does with the files in landing."""

    ingest: list[LandingFile]
    """New deliveries: parse into bronze, then conform."""
    resume: list[LandingFile]
    """In bronze from an earlier run that stopped before silver: conform only."""
    already_done: int
    ignored: list[tuple[str, str]] = field(default_factory=list)
    """Objects that are not deliveries of a known source, with the reason."""
    replay: list[LandingFile] = field(default_factory=list)
    """Done deliveries to conform again from bronze under the current contract."""


@dataclass(frozen=True)
class FileResult:
    """What happened to one file in this run."""

    file: LandingFile
    status: str
    """bronze (rows now in bronze), empty, failed, or done after the silver stage."""
    rows: int = 0
    """Rows parsed into bronze by this run (0 when an earlier run had committed them)."""
    new_columns: tuple[str, ...] = ()
    error: str | None = None
    quarantined: int = 0
    bronze_rows: int = 0
    """Rows of the delivery in bronze, whichever run parsed them."""


@dataclass(frozen=True)
class Conformed:
    """One file's bronze rows after the contract: counts and what gold must refresh."""

    batch_id: str
    bronze_rows: int
    valid: int
    quarantined: int
    inserted: int
    updated: int
    reasons: Counter[str]
    order_dates: frozenset[object] = frozenset()
    customer_ids: pl.Series = field(default_factory=lambda: no_customers())
    """Distinct; a Series, not a set: a task's parameters are walked element by element."""


def landing_files(
    objects: Iterable[StoredObject], landing: str, sources: Mapping[str, Table]
) -> tuple[list[LandingFile], list[tuple[str, str]]]:
    """Objects under `landing/<source>/` as deliveries, and the others with why they are ignored."""
    files: list[LandingFile] = []
    ignored: list[tuple[str, str]] = []
    for item in objects:
        parts = item.path.removeprefix(f"{landing}/").split("/")
        if len(parts) < 2:
            ignored.append((item.path, "not under landing/<source>/"))
        elif parts[0] not in sources:
            ignored.append((item.path, f"{parts[0]!r} names no table declared for landing"
                                       f" (declared: {', '.join(sorted(sources))})"))  # fmt: skip
        else:
            files.append(
                LandingFile(item.path, parts[0], item.size, item.tag, file_format(item.path))
            )
    return files, ignored


def plan(
    files: Iterable[LandingFile],
    manifest: Mapping[str, str],
    retry_failed: str | None = None,
    reconform: str | None = None,
) -> Plan:
    """Split deliveries by what the manifest (batch id -> status) says was done before.

    A failed delivery stays failed (a changed file is a new delivery) unless `retry_failed` is
    `all` or its path: then it is parsed again, for a fix made elsewhere (contract, parser). A
    done delivery is conformed again from bronze under the current contract when `reconform` is
    `all`, its source (table) or its path.
    """
    ingest: list[LandingFile] = []
    resume: list[LandingFile] = []
    replay: list[LandingFile] = []
    done = 0
    for file in sorted(files, key=lambda f: f.path):
        status = manifest.get(file.batch_id)
        if status is None or (status == "failed" and retry_failed in ("all", file.path)):
            ingest.append(file)
        elif status == "done" and reconform in ("all", file.source, file.path):
            replay.append(file)
        elif status in DONE_STATUSES:
            done += 1
        else:
            resume.append(file)
    return Plan(ingest, resume, done, replay=replay)


def checked_landing(
    landing: str, sources: Iterable[str] | None, known: Iterable[str]
) -> tuple[str, list[str] | None]:
    """The landing prefix and source names, refused if they could leave the lake root or name
    no table declared for landing (`known`)."""
    prefix = safe_relative(landing)
    names = None if sources is None else [safe_relative(source) for source in sources]
    for name in names or []:
        if "/" in name:
            raise UnsafePathError(f"source {name!r} must be one folder name under {prefix}/")
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise ConfigurationError(
            f"unknown source(s) {unknown}: the tables declared for landing are {sorted(known)}"
            " (declare a table with ingested=True in a category's tables.py to add one)"
        )
    return prefix, names


def missing_required(contract: Table, columns: Iterable[str]) -> list[str]:
    present = set(columns)
    return [name for name in contract.required_columns() if name not in present]


def new_columns(contract: Table, columns: Iterable[str]) -> tuple[str, ...]:
    """Delivered columns the contract does not know (schema drift), in delivery order."""
    known = set(contract.schema.names if contract.schema is not None else ())
    return tuple(c for c in columns if c not in known and not c.startswith("_"))


def conformed(contract: Table, bronze: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Bronze rows split by the contract: (valid rows, rejects with `_reason`).

    Rows the parser could not read carry their parse error as the reason.
    """
    assert contract.schema is not None
    errors = bronze.column(ERROR_COLUMN)
    if errors.null_count == bronze.num_rows:  # the usual batch: every row parsed, nothing copied
        failed, parsed = _frame(bronze.slice(0, 0)), bronze
    else:
        unreadable = pc.is_valid(errors)
        failed, parsed = _frame(bronze.filter(unreadable)), bronze.filter(pc.invert(unreadable))
    for name in contract.schema.names:  # absent only when no file delivered it parseably
        if name not in parsed.column_names:
            parsed = parsed.append_column(name, pa.nulls(parsed.num_rows, pa.string()))
    valid, rejects = contract.split(parsed.drop_columns([ERROR_COLUMN, RAW_COLUMN]))
    unparsed = failed.select(
        *(
            pl.col(name).cast(pl.String)
            if name in failed.columns
            else pl.lit(None, pl.String).alias(name)
            for name in contract.schema.names
        ),
        *(c for c in failed.columns if c.startswith("_") and c != ERROR_COLUMN),
        pl.col(ERROR_COLUMN).alias(REASON_COLUMN),
    )
    everything = pl.concat([_frame(rejects), unparsed], how="diagonal_relaxed")
    return valid, everything.to_arrow()


def no_customers() -> pl.Series:
    return pl.Series("customer_id", [], pl.Int64)


def distinct_customers(parts: Iterable[pl.Series]) -> pl.Series:
    """The distinct customer ids of all `parts`."""
    return pl.concat([no_customers(), *parts]).unique().sort()


def order_scope(valid: Iterable[pa.RecordBatch]) -> tuple[frozenset[object], pl.Series]:
    """The order dates and distinct customers of valid orders rows: the gold they touch."""
    dates: set[object] = set()
    customers: list[pl.Series] = []
    for batch in valid:
        dates.update(pc.unique(batch.column("order_date")).to_pylist())
        customers.append(pl.Series("customer_id", batch.column("customer_id")).unique())
    return frozenset(dates), distinct_customers(customers)


def stamped_batches(
    reader: pa.RecordBatchReader, *, source: str, batch_id: str, run_id: str, ingested_at: datetime
) -> pa.RecordBatchReader:
    """`reader` with the lineage columns on every batch, still streaming."""

    def lineage(table: pa.Table) -> pa.Table:
        return stamp(
            table, source=source, batch_id=batch_id, run_id=run_id, ingested_at=ingested_at
        )

    schema = lineage(reader.schema.empty_table()).schema
    batches = (
        batch for raw in reader for batch in lineage(pa.Table.from_batches([raw])).to_batches()
    )
    return pa.RecordBatchReader.from_batches(schema, batches)


def column_name_problem(names: Sequence[str]) -> str | None:
    """Why a delivery's columns (with the lineage and parser columns added) cannot be stored:
    a name given twice (Delta compares names without case) or a column without a name."""
    unnamed = [position for position, name in enumerate(names, 1) if not name.strip()]
    if unnamed:
        return f"column(s) {unnamed} of the header have no name"
    lowered = Counter(name.lower() for name in names)
    repeated = sorted({name for name in names if lowered[name.lower()] > 1})
    return f"column(s) {repeated} appear more than once" if repeated else None


def reason_counts(rejects: pa.Table) -> Counter[str]:
    if rejects.num_rows == 0:
        return Counter()
    return Counter(rejects.column(REASON_COLUMN).to_pylist())


def with_conformed(
    results: Iterable[FileResult],
    done: Mapping[str, Conformed],
    failed: Mapping[str, str] | None = None,
) -> list[FileResult]:
    """Each file's result, marked done with its silver counts when its delivery was conformed,
    or failed with the reason (batch id -> error) when its content could not be conformed."""
    failed = failed or {}
    return [
        replace(r, status="done", quarantined=c.quarantined, bronze_rows=c.bronze_rows)
        if (c := done.get(r.file.batch_id))
        else replace(r, status="failed", error=failed[r.file.batch_id])
        if r.file.batch_id in failed
        else r
        for r in results
    ]


def merged_outcomes(
    per_source: Iterable[tuple[list[Conformed], dict[str, str]]],
) -> tuple[dict[str, Conformed], dict[str, str]]:
    """Every source's conform outcome in one: conformed and failed deliveries by batch id."""
    done: dict[str, Conformed] = {}
    failed: dict[str, str] = {}
    for conformed_files, errors in per_source:
        done.update((c.batch_id, c) for c in conformed_files)
        failed.update(errors)
    return done, failed


def gold_scope(
    results: Iterable[FileResult], done: Mapping[str, Conformed]
) -> tuple[set[date], pl.Series, bool]:
    """What gold must rebuild: the order days and customers silver changed, and whether any
    product changed (then every day, since a category may have moved)."""
    orders_done = [c for c in done.values() if c.order_dates or len(c.customer_ids)]
    products_changed = any(
        c.valid for r in results if r.file.source == "products" and (c := done.get(r.file.batch_id))
    )
    return (
        {d for c in orders_done for d in c.order_dates if isinstance(d, date)},
        distinct_customers([c.customer_ids for c in orders_done]),
        products_changed,
    )


def daily_category_revenue(orders: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """Orders, units and revenue per day and category; cancelled orders count for nothing."""
    categories = products.select("product_id", "category")
    return (
        orders.filter(pl.col("status").fill_null("") != "cancelled")
        .join(categories, on="product_id", how="left")
        .with_columns(pl.col("category").fill_null("unknown"))
        .group_by("order_date", "category")
        .agg(
            pl.len().cast(pl.Int64).alias("orders"),
            pl.col("quantity").fill_null(0).sum().cast(pl.Int64).alias("units"),
            pl.col("amount").fill_null(0.0).sum().alias("revenue"),
        )
        .sort("order_date", "category")
    )


def customer_lifetime_value(orders: pl.DataFrame) -> pl.DataFrame:
    """Per customer: orders, revenue, average order value, first and last order day."""
    return (
        orders.filter(pl.col("status").fill_null("") != "cancelled")
        .group_by("customer_id")
        .agg(
            pl.len().cast(pl.Int64).alias("orders"),
            pl.col("amount").fill_null(0.0).sum().alias("revenue"),
            pl.col("order_date").min().alias("first_order_date"),
            pl.col("order_date").max().alias("last_order_date"),
        )
        .with_columns((pl.col("revenue") / pl.col("orders")).alias("average_order_value"))
        .sort("customer_id")
    )


def _frame(data: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(data)
    assert isinstance(frame, pl.DataFrame)
    return frame
