"""The project's error hierarchy: library errors are translated into these at the boundary."""

from __future__ import annotations


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


class WriteConflictError(LakeError):
    """Another writer committed first and the retries ran out."""


class SourceError(LakeError):
    """A source (API, database, file) failed or returned something unusable."""


class ObjectNotFoundError(LakeError, FileNotFoundError):
    """A non-table object (model artifact, report) does not exist under the lake root."""


class CorruptTableError(LakeError):
    """A table's transaction log is damaged (a commit file missing or unreadable)."""
