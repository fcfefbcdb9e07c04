"""Shared library for every flow: settings, lake I/O, contracts, checks, samples, artifacts."""

from flows.core.contracts import Table
from flows.core.errors import (
    ConfigurationError,
    ContractViolation,
    LakeError,
    SourceError,
    TableNotFoundError,
    UnsafePathError,
    WriteConflictError,
)
from flows.core.settings import LakeSettings, get_settings

__all__ = [
    "ConfigurationError",
    "ContractViolation",
    "LakeError",
    "LakeSettings",
    "SourceError",
    "Table",
    "TableNotFoundError",
    "UnsafePathError",
    "WriteConflictError",
    "get_settings",
]
