"""Lossless casting of delivered values into a contract's types, per row, vectorised.

A value is cast when its meaning survives (`517.0` into an integer column, `Yes` into a boolean,
an ISO 8601 timestamp with any offset); otherwise it becomes null, and `split_batch` sends the row
to quarantine as `<column>: not a valid <Type>`. The rules are listed in the README ("Casting
rules"). Each target type has readers in order: every value is read by the first, and a later reader
sees only the values the earlier ones could not read, so clean data costs one cast per value.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pyarrow as pa

Reader = Callable[[pl.Expr], pl.Expr]
BOOLEAN_SPELLINGS = {
    **dict.fromkeys(("true", "t", "yes", "y", "1"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0"), False),
}
"""Text a boolean column accepts, compared after trimming spaces and lowering case."""
EXACT_FLOAT_INTEGERS = 2**53
"""Above this magnitude a float no longer holds every integer, so `1e17` may not mean 10**17."""
_FRACTION_DIGITS = {"ms": 3, "us": 6, "ns": 9}
_WHOLE_DECIMAL = r"^([+-]?\d+)\.0*$"
_WHOLE = r"^[+-]?(\d+\.?0*|(\d+\.?\d*|\.\d+)[eE][+-]?\d+)$"
_MIDNIGHT = r"^(\d{4}-\d{2}-\d{2})(?:[T ]00:00(?::00(?:\.0+)?)?(?:[Zz]|[+-]00(?::?00)?)?)?$"


def cast_columns(raw: pl.DataFrame, target: pl.Schema) -> pl.DataFrame:
    """`raw`'s columns of `target` cast to their types; a value that cannot be cast is null."""
    readers = {name: _readers(raw[name], dtype) for name, dtype in target.items()}
    first = raw.select(readers[name][0](pl.col(name)).alias(name) for name in target)
    return first.with_columns(
        _read_rest(raw[name], first[name], readers[name][1:])
        for name in target
        if len(readers[name]) > 1
    )


def cast_series(values: pl.Series, target: pl.DataType) -> pl.Series:
    """`values` as `target`, each value by the first of the target's readers that accepts it."""
    readers = _readers(values, target)
    return _read_rest(values, _read(values, readers[0]), readers[1:])


def _readers(values: pl.Series, target: pl.DataType) -> list[Reader]:
    """The target's readers, the one that reads the first delivered value first.

    A column is usually written one way, so this reads most columns in one pass; the order never
    changes a result, since the readers of a type agree wherever two of them accept a value.
    """
    readers = _all_readers(values.dtype, target)
    delivered = values.is_not_null()
    if len(readers) == 1 or not delivered.any():
        return readers
    sample = values.gather([delivered.arg_max() or 0])
    reading = next((r for r in readers if _read(sample, r).is_not_null().all()), readers[0])
    return [reading, *(r for r in readers if r is not reading)]


def _read_rest(values: pl.Series, result: pl.Series, readers: list[Reader]) -> pl.Series:
    """`result` with the values it could not read read by the next readers, in order."""
    for reader in readers:
        unread = result.is_null() & values.is_not_null()
        if not unread.any():
            break
        rows = unread.arg_true()
        result = result.scatter(rows, _read(values.gather(rows), reader))
    return result.alias(values.name)


def _read(values: pl.Series, reader: Reader) -> pl.Series:
    return values.to_frame("v").select(reader(pl.col("v"))).to_series()


def _all_readers(source: pl.DataType, target: pl.DataType) -> list[Reader]:
    if source == target:
        return [lambda column: column]
    if source != pl.String:
        return [_typed_reader(source, target)]
    if target.is_integer():
        return [
            lambda text: text.cast(target, strict=False),
            _whole_number(target),
            _whole_decimal(target),
        ]
    if target == pl.Boolean:
        return [_boolean]
    if target == pl.Date:
        return [lambda text: text.str.to_date("%Y-%m-%d", strict=False), _midnight_date]
    if isinstance(target, pl.Datetime):
        return _datetime_readers(target)
    return [
        lambda text: text.cast(target, strict=False),
        lambda text: text.str.strip_chars().cast(target, strict=False),
    ]


def _typed_reader(source: pl.DataType, target: pl.DataType) -> Reader:
    """A cast that must survive the way back: 517.5 never becomes 517, nor 2**53 + 1 a float."""
    widening = target == pl.String or (
        target.is_float() and (source.is_float() or source.is_decimal())
    )
    if widening:
        return lambda column: column.cast(target, strict=False)

    def reader(column: pl.Expr) -> pl.Expr:
        cast = column.cast(target, strict=False)
        return pl.when(cast.cast(source, strict=False) == column).then(cast)

    return reader


def _whole_number(target: pl.DataType) -> Reader:
    """`517.0`, `517.00`, `-3.`, `1e3`: read as a float, kept when whole and exactly held."""

    def reader(text: pl.Expr) -> pl.Expr:
        trimmed = text.str.strip_chars()
        number = trimmed.cast(pl.Float64, strict=False)
        whole = (number == number.floor()) & (number.abs() < EXACT_FLOAT_INTEGERS)
        return pl.when(whole & trimmed.str.contains(_WHOLE)).then(number.cast(target, strict=False))

    return reader


def _whole_decimal(target: pl.DataType) -> Reader:
    """Whole decimals beyond a float's exact range: `9007199254740993.0`."""

    def reader(text: pl.Expr) -> pl.Expr:
        digits = text.str.strip_chars().str.extract(_WHOLE_DECIMAL, 1)
        return digits.cast(target, strict=False)

    return reader


def _boolean(text: pl.Expr) -> pl.Expr:
    lowered = text.str.strip_chars().str.to_lowercase()
    return lowered.replace_strict(BOOLEAN_SPELLINGS, default=None, return_dtype=pl.Boolean)


def _midnight_date(text: pl.Expr) -> pl.Expr:
    day = text.str.strip_chars().str.extract(_MIDNIGHT, 1)
    return day.str.to_date("%Y-%m-%d", strict=False)


def _datetime_readers(target: pl.Datetime) -> list[Reader]:
    """ISO 8601 with `T` or a space, an offset or none (the contract's zone), any fraction."""
    unit = target.time_unit
    zone = target.time_zone or "UTC"
    finer = rf"\.\d{{{_FRACTION_DIGITS[unit]}}}\d*[1-9]"

    def parse(format_: str, *, trim: bool) -> Reader:
        def reader(text: pl.Expr) -> pl.Expr:
            text = text.str.strip_chars() if trim else text
            parsed = text.str.to_datetime(format_, time_unit=unit, time_zone=zone, strict=False)
            exact = pl.when(~text.str.contains(finer)).then(parsed)
            return exact if target.time_zone else exact.dt.replace_time_zone(None)

        return reader

    common = [_iso_with_offset(target)] if target.time_zone else []
    return [
        *common,
        parse("%Y-%m-%d %H:%M:%S%.f%#z", trim=False),
        *(
            parse(f"%Y-%m-%d{separator}{time}{offset}", trim=True)
            for time in ("%H:%M:%S%.f", "%H:%M")
            for offset in ("%#z", "")
            for separator in ("T", " ")
        ),
        parse("%Y-%m-%d", trim=True),
    ]


def _iso_with_offset(target: pl.Datetime) -> Reader:
    """The usual shape, `2024-01-02T10:00:00.5+02:00` or `...Z`, read by Arrow's ISO 8601 parser
    (a sixth of the format readers' cost on distinct values); a column that is not all in that
    shape is left to them whole."""
    digits = _FRACTION_DIGITS[target.time_unit]
    shape = (
        r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}"
        rf"(\.\d{{1,{digits}}})?(Z|[+-]\d{{2}}:\d{{2}})$"
    )
    arrow_type = pa.timestamp(target.time_unit, target.time_zone)

    def read(values: pl.Series) -> pl.Series:
        unread = pl.Series(values.name, [None] * len(values), target)
        if not values.str.contains(shape).all():
            return unread
        try:
            parsed = values.to_arrow().cast(arrow_type)
        except pa.ArrowInvalid:  # e.g. a day that does not exist
            return unread
        return pl.Series(values.name, parsed)

    return lambda text: text.map_batches(read, return_dtype=target)
