"""Objects that are not Delta tables (model artifacts, reports) under the lake root, folder or S3.

The same calls for a local lake and for `s3://`: pyarrow's filesystems, configured from the
settings (endpoint, region, credentials) exactly as the Delta tables are.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
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
    """Write one object (replacing it) byte for byte and return its location under the lake root.

    The new content is complete before the old is gone: S3 replaces an object atomically, and a
    local file is written beside its target and renamed over it.
    """
    fs, path = _path(relative)
    if not isinstance(fs, pafs.LocalFileSystem):
        with fs.open_output_stream(path, compression=None) as stream:
            stream.write(data)
        return lake_location(relative)
    folder, _, name = path.rpartition("/")
    fs.create_dir(folder, recursive=True)
    partial = f"{folder}/.{name}.{uuid.uuid4().hex}.partial"
    with fs.open_output_stream(partial, compression=None) as stream:
        stream.write(data)
    fs.move(partial, path)
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
    """Relative paths of every object under `prefix` ("" for the whole lake), sorted; empty if
    there is none."""
    fs, root = filesystem()
    path = f"{root}/{safe_relative(prefix)}" if prefix else root
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


@dataclass(frozen=True)
class VersionCleanup:
    """What deleting noncurrent versions did: how many went, and whether the bucket refused."""

    deleted: int
    refused: bool = False


def delete_noncurrent_versions(prefixes: Iterable[str]) -> VersionCleanup:
    """On S3, delete by version id every noncurrent version and delete marker under `prefixes`.

    A versioned bucket keeps what was overwritten or deleted as noncurrent versions until its
    lifecycle rule expires them; this removes them now. Current objects are never touched
    (versions first, then the markers, so no older version becomes current). A local lake has no
    versions. `refused` when the credentials may not list or delete versions.
    """
    from botocore.exceptions import ClientError

    settings = get_settings()
    if not settings.is_s3:
        return VersionCleanup(0)
    bucket, _, key_root = settings.root.removeprefix("s3://").partition("/")
    key_prefix = f"{key_root}/" if key_root else ""
    client = boto3_session(settings).client("s3", endpoint_url=settings.endpoint_url)
    deleted, refused = 0, False
    try:
        for prefix in sorted(set(prefixes)):
            pages = client.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=f"{key_prefix}{safe_relative(prefix)}"
            )
            listed = list(pages)
            old = [v for page in listed for v in page.get("Versions", []) if not v["IsLatest"]]
            markers = [m for page in listed for m in page.get("DeleteMarkers", [])]
            for versions in (old, markers):
                done, failed = _delete_versions(client, bucket, versions)
                deleted, refused = deleted + done, refused or failed
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("AccessDenied", "NotImplemented"):
            return VersionCleanup(deleted, refused=True)
        raise
    return VersionCleanup(deleted, refused)


def _delete_versions(client: Any, bucket: str, versions: Sequence[Any]) -> tuple[int, bool]:
    """Delete in batches (the API takes 1000 a request): how many went, whether any was refused."""
    deleted, refused = 0, False
    for start in range(0, len(versions), 1000):
        chunk = versions[start : start + 1000]
        response = client.delete_objects(
            Bucket=bucket,
            Delete={
                "Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in chunk],
                "Quiet": True,
            },
        )
        errors = response.get("Errors", [])
        deleted += len(chunk) - len(errors)
        refused = refused or bool(errors)
    return deleted, refused
