"""Objects that are not Delta tables (model artifacts, reports) under the lake root, folder or S3.

The same calls for a local lake and for `s3://`: pyarrow's filesystems, configured from the
settings (endpoint, region, credentials) exactly as the Delta tables are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from flows.core.errors import ObjectNotFoundError
from flows.core.paths import lake_location, safe_relative
from flows.core.settings import (
    LakeSettings,
    boto3_session,
    get_settings,
    s3_storage_options,
)


def filesystem(settings: LakeSettings | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding the lake and the lake root's path on it (no scheme)."""
    settings = settings or get_settings()
    if not settings.is_s3:
        return pafs.LocalFileSystem(), settings.root
    options = s3_storage_options(settings)
    endpoint = urlparse(options["AWS_ENDPOINT_URL"]) if "AWS_ENDPOINT_URL" in options else None
    s3 = pafs.S3FileSystem(
        access_key=options.get("AWS_ACCESS_KEY_ID"),
        secret_key=options.get("AWS_SECRET_ACCESS_KEY"),
        session_token=options.get("AWS_SESSION_TOKEN"),
        region=options["AWS_REGION"],
        endpoint_override=endpoint.netloc if endpoint else None,
        scheme=endpoint.scheme if endpoint else "https",
    )
    return s3, settings.root.removeprefix("s3://")


def _path(relative: str) -> tuple[pafs.FileSystem, str]:
    fs, root = filesystem()
    return fs, f"{root}/{safe_relative(relative)}"


def write_bytes(relative: str, data: bytes) -> str:
    """Write one object (replacing it) byte for byte and return its location under the lake root."""
    fs, path = _path(relative)
    if isinstance(fs, pafs.LocalFileSystem):
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path, compression=None) as stream:
        stream.write(data)
    return lake_location(relative)


def read_bytes(relative: str) -> bytes:
    """The object's content; raises ObjectNotFoundError if there is none."""
    fs, path = _path(relative)
    try:
        with fs.open_input_stream(path, compression=None) as stream:
            return bytes(stream.readall())
    except FileNotFoundError as error:
        raise ObjectNotFoundError(f"{lake_location(relative)} does not exist") from error


def object_exists(relative: str) -> bool:
    fs, path = _path(relative)
    return bool(fs.get_file_info(path).type == pafs.FileType.File)


def list_objects(prefix: str) -> list[str]:
    """Relative paths of every object under `prefix`, sorted; empty if there is none."""
    fs, path = _path(prefix)
    root = filesystem()[1]
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return sorted(
        info.path.removeprefix(root + "/") for info in infos if info.type == pafs.FileType.File
    )


def delete_objects(relatives: Iterable[str]) -> None:
    """Delete each object; one that is already gone is fine."""
    for relative in relatives:
        fs, path = _path(relative)
        with contextlib.suppress(FileNotFoundError):
            fs.delete_file(path)


@dataclass(frozen=True, order=True)
class StoredObject:
    """One object under the lake root, with what identifies its content."""

    path: str
    """Relative to the lake root."""
    size: int
    tag: str
    """Changes when the content changes: the S3 ETag, or a local file's mtime in nanoseconds."""


def describe_objects(prefix: str) -> list[StoredObject]:
    """Every object under `prefix` with its size and content tag, sorted by path."""
    settings = get_settings()
    relative = safe_relative(prefix)
    if not settings.is_s3:
        fs, path = _path(relative)
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        return sorted(
            StoredObject(info.path.removeprefix(settings.root + "/"), info.size, str(info.mtime_ns))
            for info in infos
            if info.type == pafs.FileType.File
        )
    bucket, _, key_root = settings.root.removeprefix("s3://").partition("/")
    key_prefix = f"{key_root}/" if key_root else ""
    client = boto3_session(settings).client("s3", endpoint_url=settings.endpoint_url)
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{key_prefix}{relative}/"
    )
    return sorted(
        StoredObject(item["Key"].removeprefix(key_prefix), item["Size"], item["ETag"].strip('"'))
        for page in pages
        for item in page.get("Contents", [])
    )


def open_input_stream(relative: str, *, compression: str | None = "detect") -> pa.NativeFile:
    """A sequential stream over one object; `detect` decompresses by extension (`.gz`)."""
    fs, path = _path(relative)
    try:
        return fs.open_input_stream(path, compression=compression)
    except FileNotFoundError as error:
        raise ObjectNotFoundError(f"{lake_location(relative)} does not exist") from error


def open_input_file(relative: str) -> pa.NativeFile:
    """A random-access handle on one object (what Parquet readers need)."""
    fs, path = _path(relative)
    try:
        return fs.open_input_file(path)
    except FileNotFoundError as error:
        raise ObjectNotFoundError(f"{lake_location(relative)} does not exist") from error
