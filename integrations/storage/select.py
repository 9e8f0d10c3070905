"""Build the configured blob store from settings (a Flask config or any mapping).

STORAGE_BACKEND     "local" (default) or "s3"
STORAGE_LOCAL_ROOT  folder of the local store; default INSTANCE_DIR/blobs
STORAGE_S3_BUCKET   required with s3
STORAGE_S3_ENDPOINT endpoint URL for S3-compatible stores; empty → AWS
STORAGE_S3_ACCESS_KEY, STORAGE_S3_SECRET_KEY  empty → boto3's own chain (environment, role)
STORAGE_S3_REGION   e.g. "cn-north-1"; empty → boto3's default
STORAGE_S3_PREFIX   folder inside the bucket; default "" (the whole bucket)
STORAGE_S3_ADDRESSING_STYLE  "auto" (default), "path" or "virtual" (Alibaba OSS wants virtual)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from integrations.storage.base import BlobStorage
from integrations.storage.local import LocalStorage
from integrations.storage.s3 import S3Storage

BACKENDS = ("local", "s3")


def storage_from_config(cfg: Mapping[str, Any]) -> BlobStorage:
    """The BlobStorage the settings name; ValueError on an unknown backend or a missing setting."""
    backend = str(cfg.get("STORAGE_BACKEND") or "local").strip().lower()
    if backend == "local":
        root = cfg.get("STORAGE_LOCAL_ROOT")
        if not root:
            instance = cfg.get("INSTANCE_DIR")
            if not instance:
                raise ValueError("set STORAGE_LOCAL_ROOT (or INSTANCE_DIR) for STORAGE_BACKEND=local")
            root = Path(instance) / "blobs"
        return LocalStorage(Path(root))
    if backend == "s3":
        bucket = cfg.get("STORAGE_S3_BUCKET")
        if not bucket:
            raise ValueError("STORAGE_BACKEND=s3 needs STORAGE_S3_BUCKET")
        return S3Storage(
            str(bucket),
            endpoint_url=cfg.get("STORAGE_S3_ENDPOINT") or None,
            access_key=cfg.get("STORAGE_S3_ACCESS_KEY") or None,
            secret_key=cfg.get("STORAGE_S3_SECRET_KEY") or None,
            region=cfg.get("STORAGE_S3_REGION") or None,
            prefix=cfg.get("STORAGE_S3_PREFIX") or "",
            addressing_style=cfg.get("STORAGE_S3_ADDRESSING_STYLE") or "auto",
        )
    raise ValueError(f"unknown STORAGE_BACKEND {backend!r}; choose one of {', '.join(BACKENDS)}")
