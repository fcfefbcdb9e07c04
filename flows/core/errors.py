"""The project's error hierarchy: library errors are translated into these at the boundary."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Literal

import polars as pl
import pyarrow as pa
from botocore.exceptions import ClientError


class LakeError(Exception):
    """Base class: a message a user can act on."""


class ConfigurationError(LakeError):
    """A setting is missing or inconsistent."""


class UnsafePathError(LakeError, ValueError):
    """A path or table name would escape the lake root."""


class ContractViolation(LakeError):
    """Data cannot be made to fit a table's contract (e.g. a required column is missing)."""


class TableNotFoundError(LakeError):
    """The Delta table does not exist yet."""


class MissingInputError(ConfigurationError):
    """An input table does not exist yet and sample data may not fill it."""


class WriteConflictError(LakeError):
    """Another writer committed first and the retries ran out."""


class SourceError(LakeError):
    """A source (API, database, file) failed or returned something unusable."""


class ObjectNotFoundError(LakeError, FileNotFoundError):
    """A non-table object (model artifact, report) does not exist under the lake root."""


class CorruptTableError(LakeError):
    """A table's transaction log is damaged (a commit file missing or unreadable)."""


class ErasureIncomplete(LakeError):
    """After an erasure, the verification still finds the subject somewhere (named)."""


class ContentError(SourceError):
    """One unit's content (a file, a page, a chunk) cannot be read or stored as delivered.

    Retrying cannot help: that unit fails alone, with this message as its reason, and the rest
    of the run proceeds.
    """


ErrorKind = Literal["transient", "content", "configuration"]

_CONTENT_ERRORS: tuple[type[BaseException], ...] = (
    ContentError,
    ContractViolation,
    UnicodeError,
    json.JSONDecodeError,
    zlib.error,
    gzip.BadGzipFile,
    EOFError,  # a truncated gzip stream
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    pl.exceptions.PolarsError,
)
_IO_MARKERS = ("object store", "s3 error", "connection", "timed out", "timeout", "dispatch failure")
_GONE_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def error_kind(error: BaseException) -> ErrorKind:
    """Whether retrying may help (`transient`), the unit's content caused it (`content`), or the
    run was asked something impossible (`configuration`: a setting or parameter to fix).

    Content errors come from parsing, decoding, casting or storing what was delivered (a
    duplicated column, invalid UTF-8, a truncated Parquet file), from an object that vanished
    after it was listed, and from a table whose log is damaged. Anything else (connection
    errors, timeouts, throttling, 5xx answers, commit conflicts, and errors this function does
    not know) is transient: it is retried and, when the retries run out, fails the run with
    nothing partial rather than blaming a file.
    """
    if isinstance(error, ConfigurationError | UnsafePathError):
        return "configuration"
    if isinstance(error, ObjectNotFoundError | FileNotFoundError):
        return "content"
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        return "content" if code in _GONE_CODES else "transient"
    if isinstance(error, ContentError | ContractViolation | CorruptTableError):
        return "content"
    if isinstance(error, _CONTENT_ERRORS) and not _mentions_io(error):
        return "content"
    return "transient"


def _mentions_io(error: BaseException) -> bool:
    """Parsers that read through an object store report its failures as their own errors."""
    message = str(error).lower()
    return any(marker in message for marker in _IO_MARKERS)
