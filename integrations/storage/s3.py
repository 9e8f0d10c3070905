"""Blobs in an S3-compatible object store (AWS S3, MinIO, Ceph, Tencent COS, Alibaba OSS...).

boto3 is imported when an S3Storage is built, so the application runs without it when storage
is local. A PUT is atomic in S3: readers see the whole old or the whole new object. The client
sends Content-MD5 and only the checksums a request requires (boto3's default CRC trailers are
refused by several S3-compatible stores). Failures become StorageUnavailable (retryable:
network, 5xx, throttling) or StorageError (permanent: credentials, missing bucket...).
Objects under the prefix whose names break the key rules are skipped by `iter_keys`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NoReturn

from integrations.storage.base import (
    BlobNotFound,
    StorageError,
    StorageUnavailable,
    validate_key,
    validate_prefix,
)

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
_TEMPORARY = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable", "InternalError"}
)


class S3Storage:
    """BlobStorage on one bucket, every key under an optional prefix ("yiwang" → "yiwang/...")."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        prefix: str = "",
        addressing_style: str = "auto",
    ) -> None:
        try:
            import boto3
            from botocore import exceptions
            from botocore.config import Config
        except ImportError as exc:
            raise RuntimeError(
                "STORAGE_BACKEND=s3 needs the 'boto3' package (pip install boto3); "
                "install it or set STORAGE_BACKEND=local"
            ) from exc
        if not bucket:
            raise ValueError("S3 storage needs a bucket name")
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        self.prefix = _normal_prefix(prefix)
        self._exc = exceptions
        config = Config(
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 3},
            s3={"addressing_style": addressing_style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A client is thread-safe once built; a boto3 session is not, so build one here.
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region or None,
            config=config,
        )

    def __repr__(self) -> str:
        return f"S3Storage({self.bucket!r}, endpoint_url={self.endpoint_url!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _fail(self, exc: Exception, key: str) -> NoReturn:
        if isinstance(exc, self._exc.ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            code = str(error.get("Code", ""))
            if code != "NoSuchBucket" and (code in _NOT_FOUND or status == 404):
                raise BlobNotFound(key) from exc
            if code in _TEMPORARY or status >= 500 or status == 429:
                raise StorageUnavailable(f"S3 {code or status} on {key!r}") from exc
            raise StorageError(f"S3 {code or status} on {key!r}") from exc
        permanent = (
            self._exc.NoCredentialsError,
            self._exc.PartialCredentialsError,
            self._exc.ParamValidationError,
        )
        if isinstance(exc, permanent):
            raise StorageError(f"S3 request for {key!r} cannot be made: {exc}") from exc
        raise StorageUnavailable(f"S3 unreachable for {key!r}: {exc}") from exc

    def _errors(self) -> tuple[type[Exception], ...]:
        return (self._exc.ClientError, self._exc.BotoCoreError)

    def put(self, key: str, data: bytes) -> None:
        full = self._key(key)
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=data,
                ContentMD5=md5,
                ContentType="application/octet-stream",
            )
        except self._errors() as exc:
            self._fail(exc, key)

    def get(self, key: str) -> bytes:
        full = self._key(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=full)
            with response["Body"] as body:
                return body.read()
        except self._errors() as exc:
            self._fail(exc, key)

    def delete(self, key: str) -> None:
        full = self._key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=full)
        except self._errors() as exc:
            try:
                self._fail(exc, key)
            except BlobNotFound:
                return

    def exists(self, key: str) -> bool:
        full = self._key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=full)
        except self._errors() as exc:
            try:
                self._fail(exc, key)
            except BlobNotFound:
                return False
        return True

    def iter_keys(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        validate_prefix(prefix)
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    try:
                        validate_key(key)
                    except ValueError:
                        continue  # not written by us
                    yield key, item["LastModified"].astimezone(UTC)
        except self._errors() as exc:
            self._fail(exc, prefix)

    def drop_partial_writes(self, older_than: datetime) -> int:
        """Nothing to drop: `put` is one PutObject, which stores the whole object or nothing."""
        return 0


def _normal_prefix(prefix: str) -> str:
    stripped = (prefix or "").strip("/")
    return validate_key(stripped) + "/" if stripped else ""
