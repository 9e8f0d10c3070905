"""The interface every blob store implements, its key rules and its errors.

Keys look like `materials/<account>/<file>`: ASCII letters, digits and `/ _ . -`, at most 256
characters, no leading `/`, no empty segment and no segment starting with `.` (so no `.` or
`..`, and nothing that could collide with LocalStorage's hidden temporary files). Every backend
applies the same rules, so a key valid on the developer's disk is valid on S3 and the reverse.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Protocol, runtime_checkable

from core.errors import PermanentError, RetryableError

MAX_KEY_LENGTH = 256
_KEY_CHARS = re.compile(r"[A-Za-z0-9/_.-]*")


class BlobNotFound(LookupError):
    """No object under this key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class StorageUnavailable(RetryableError):
    """The store did not answer or answered with a temporary failure (timeouts, 5xx, throttling)."""


class StorageError(PermanentError):
    """The store refused the request in a way a retry will not fix (credentials, missing bucket)."""


@runtime_checkable
class BlobStorage(Protocol):
    """A flat key → bytes store."""

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing any object; a reader sees the old or the new, never a part."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; raises BlobNotFound."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    def iter_keys(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        """Every key starting with `prefix` (a plain string prefix) and its last-modified time in UTC.

        The order is unspecified; objects written or deleted during the iteration may or may not
        appear. Meant for the orphan sweeper, which compares keys with database rows.
        """
        ...

    def drop_partial_writes(self, older_than: datetime) -> int:
        """Remove what writes interrupted before `older_than` left behind (a process killed in
        the middle of `put`); how many. Never touches a stored object."""
        ...


def validate_key(key: str) -> str:
    """Return `key` if it follows the key rules, else raise ValueError."""
    if not isinstance(key, str) or not key:
        raise ValueError("a blob key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"a blob key has at most {MAX_KEY_LENGTH} characters")
    if not _KEY_CHARS.fullmatch(key):
        raise ValueError(f"a blob key may only hold A-Z a-z 0-9 / _ . - : {key!r}")
    if ".." in key or key.startswith("/"):
        raise ValueError(f"a blob key may not start with / or contain '..': {key!r}")
    if any(not part or part.startswith(".") for part in key.split("/")):
        raise ValueError(f"a blob key may not have empty segments or segments starting with '.': {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` if it could start a valid key ("" and a trailing / are fine), else raise ValueError."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix
