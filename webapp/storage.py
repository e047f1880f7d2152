"""Where uploaded files live: a local folder (default) or any S3-compatible bucket.

STORAGE_URL selects it: `file:///srv/journeylens/uploads` or `s3://bucket/prefix` (with S3_ENDPOINT_URL
for MinIO, Ceph, …). Files are written by streaming, with the size counted and the SHA-256 computed on
the way, and the write is abandoned (nothing left behind) past the size limit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

CHUNK_BYTES = 1024 * 1024


class TooLarge(Exception):
    """The file is larger than the configured limit."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"larger than {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


@dataclass(frozen=True)
class StoredFile:
    """A file in storage: its key, size and SHA-256."""

    key: str
    size_bytes: int
    sha256: str


def new_key(organisation_id: int, filename: str) -> str:
    """A fresh storage key under the organisation's prefix (the name keeps its extension for readers)."""
    suffix = "".join(Path(filename).suffixes[-2:]).lower()[:16]
    return f"org-{organisation_id}/{uuid.uuid4().hex}{suffix}"


def _copy_counting(source: BinaryIO, target: BinaryIO, limit_bytes: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_BYTES):
        size += len(chunk)
        if size > limit_bytes:
            raise TooLarge(limit_bytes)
        digest.update(chunk)
        target.write(chunk)
    return size, digest.hexdigest()


class LocalStorage:
    """Files in a folder shared by web and workers (a mounted volume when they are on several machines)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("storage key escapes the storage root")
        return path

    def save(self, key: str, stream: BinaryIO, limit_bytes: int) -> StoredFile:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        try:
            with open(partial, "wb") as target:
                size, sha256 = _copy_counting(stream, target, limit_bytes)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredFile(key, size, sha256)

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.exists():
            raise FileNotFoundError(key)
        yield path

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Storage:
    """Files in an S3-compatible bucket; workers download to a temporary file to read them."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def save(self, key: str, stream: BinaryIO, limit_bytes: int) -> StoredFile:
        # Spool through a temporary file: we learn size and hash before anything reaches the bucket,
        # and a file over the limit never does.
        with tempfile.TemporaryFile() as spool:
            size, sha256 = _copy_counting(stream, spool, limit_bytes)
            spool.seek(0)
            self.client.upload_fileobj(spool, self.bucket, self._key(key))
        return StoredFile(key, size, sha256)

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        suffix = "".join(Path(key).suffixes[-2:])
        folder = tempfile.mkdtemp(prefix="journeylens-s3-")
        path = Path(folder) / f"download{suffix}"
        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError:
            return False

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def storage_from_url(url: str, endpoint_url: str | None = None) -> LocalStorage | S3Storage:
    """The storage a STORAGE_URL names."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return S3Storage(parts.netloc, parts.path, endpoint_url)
    if parts.scheme in ("file", ""):
        return LocalStorage(parts.path if parts.scheme else url)
    raise ValueError(f"unsupported STORAGE_URL scheme {parts.scheme!r} (use file:// or s3://)")


def get_storage():
    """The app's storage (built once per app)."""
    from flask import current_app

    storage = current_app.extensions.get("journeylens_storage")
    if storage is None:
        storage = storage_from_url(
            current_app.config["STORAGE_URL"], current_app.config.get("S3_ENDPOINT_URL")
        )
        current_app.extensions["journeylens_storage"] = storage
    return storage
