"""Keyset (cursor) pagination: an opaque cursor carries the sort key of the last row shown.

The next page starts after that key, so rows added or removed meanwhile never shift a page
(no row shown twice, none skipped that was there all along). Each area turns a malformed
cursor into its own 400 error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from core.db import is_id


def encode(*parts: str) -> str:
    """The cursor of a sort key (its parts as strings)."""
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, size: int) -> list[str]:
    """The `size` string parts of a cursor `encode` made; ValueError for anything else."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("malformed cursor") from exc
    if not isinstance(parts, list) or len(parts) != size or not all(isinstance(p, str) for p in parts):
        raise ValueError("malformed cursor")
    return parts


def moment(value: str) -> datetime:
    """An aware time from a cursor (UTC); ValueError for a naive or out-of-range one."""
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:  # cursors carry their zone; a naive time cannot be compared
            raise ValueError(value)
        return when.astimezone(UTC)
    except OverflowError as exc:  # near year 1 or 9999
        raise ValueError(value) from exc


def day(value: str) -> date:
    """A date from a cursor; ValueError otherwise."""
    return date.fromisoformat(value)


def row_id(value: str) -> str:
    """An id from a cursor; ValueError for anything that cannot be one."""
    if not is_id(value):
        raise ValueError("not an id")
    return value


def time_id_page(
    session: Session,
    stmt: Select,
    at: Any,
    key: Any,
    *,
    cursor: str | None,
    limit: int,
    bad_cursor: Callable[[], Exception],
    newest_first: bool = False,
) -> tuple[list[Any], str | None]:
    """One page of `stmt` (a select of one mapped class) in (`at`, `key`) order, a time column and
    the id, and the next page's cursor (None on the last page). A malformed cursor raises
    `bad_cursor()`, each area's own 400."""
    if cursor:
        try:
            when, last = decode(cursor, 2)
            when_at, last_id = moment(when), row_id(last)
        except ValueError:
            raise bad_cursor() from None
        if newest_first:
            stmt = stmt.where(or_(at < when_at, and_(at == when_at, key < last_id)))
        else:
            stmt = stmt.where(or_(at > when_at, and_(at == when_at, key > last_id)))
    order = (at.desc(), key.desc()) if newest_first else (at, key)
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last_row = rows[limit - 1]
    return rows[:limit], encode(getattr(last_row, at.key).isoformat(), getattr(last_row, key.key))
