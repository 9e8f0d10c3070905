"""Blobs as files under a root folder: for development, tests and single-host deployments.

A write goes to a hidden temporary file in the object's own folder, is flushed and fsynced, then
renamed over the key's path with `os.replace` (atomic on POSIX), and the folder is fsynced so
the rename survives a crash. Readers therefore see the whole old object or the whole new one.
Folders are created with mode 0o700 and files with 0o600: only the service's user can read
citizens' materials. Empty folders are left in place after a delete (removing them could race
with a concurrent write into the same folder). A key cannot be both an object and the folder of
other keys (`a` and `a/b`); such a write raises ValueError.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from integrations.storage.base import BlobNotFound, validate_key, validate_prefix

DIR_MODE = 0o700
FILE_MODE = 0o600
_TEMP_PREFIX = ".tmp-"  # keys never have a segment starting with ".", so no key collides


class LocalStorage:
    """BlobStorage on the local file system."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self._make_dirs(self.root)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _make_dirs(self, folder: Path) -> None:
        missing = []
        while not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            try:
                path.mkdir(mode=DIR_MODE)
            except FileExistsError:  # a concurrent writer made it, or a file is in the way
                if not path.is_dir():
                    raise
                continue
            os.chmod(path, DIR_MODE)  # whatever the umask

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            self._make_dirs(path.parent)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ValueError(f"key {key!r} runs through an existing object") from exc
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)  # created 0o600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            if isinstance(exc, IsADirectoryError):
                raise ValueError(f"key {key!r} is the folder of other keys") from exc
            raise
        _fsync_dir(path.parent)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise BlobNotFound(key) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if not path.is_dir():
                path.unlink()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def iter_keys(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        validate_prefix(prefix)
        # Walk only the deepest folder the prefix names; filter the rest by string prefix.
        start = self.root.joinpath(*prefix.split("/")[:-1])
        for folder, dirs, names in os.walk(start):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            relative = Path(folder).relative_to(self.root).as_posix()
            base = "" if relative == "." else relative + "/"
            for name in names:
                key = base + name
                if name.startswith(".") or not key.startswith(prefix):
                    continue
                try:
                    modified = os.stat(os.path.join(folder, name)).st_mtime
                except FileNotFoundError:  # deleted meanwhile
                    continue
                yield key, datetime.fromtimestamp(modified, UTC)

    def drop_partial_writes(self, older_than: datetime) -> int:
        """The hidden temporary files of writes that never reached their rename (the writer was
        killed: a worker timeout, out of memory, a host crash). `iter_keys` skips them, so
        without this they would fill the disk unseen. A write still in progress is younger."""
        cutoff = older_than.timestamp()
        dropped = 0
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if not name.startswith(_TEMP_PREFIX):
                    continue
                path = os.path.join(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path).st_mtime < cutoff:
                        os.unlink(path)
                        dropped += 1
        return dropped


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
