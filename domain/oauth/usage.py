"""Every access a third-party app makes with a citizen's token goes on the citizen's ledger.

The ledger line is written after the request succeeded (a refused request read nothing) and is
on this host's disk before the answer leaves; the spool inserts it into the ledger table within
a fraction of a second, and recovers it if the process dies first (core/spool.py). While the
spool cannot keep up, third-party access pauses (`ensure_recordable`) rather than go unrecorded.
The grant's `last_used_at` is moved at most once a minute per grant, so a busy app does not turn
every read into an update of the same row (each process remembers when it last asked Redis).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from sqlalchemy import select, update

from core import clock
from core.spool import Spool
from domain.ledger import service as ledger
from domain.ledger.models import CLIENT
from domain.oauth.errors import LedgerBacklogged
from domain.oauth.models import OAuthClient, OAuthGrant
from domain.oauth.scopes import SCOPES

_NAMES: dict[str, tuple[float, str]] = {}  # client id → (fetched at, name): names rarely change
_NAME_TTL = 60.0
_TOUCHED: dict[str, float] = {}  # grant id → when this process last moved (or asked to move) last use
_TOUCH_EVERY = 60.0


def client_name(connect: Callable[[], Any], client_id: str) -> str:
    hit = _NAMES.get(client_id)
    if hit is not None and time.monotonic() - hit[0] < _NAME_TTL:
        return hit[1]
    with connect() as conn:
        name = conn.execute(select(OAuthClient.name).where(OAuthClient.id == client_id)).scalar() or client_id
    _NAMES[client_id] = (time.monotonic(), name)
    return name


def ensure_recordable(lines: Spool) -> None:
    """Refuse a third-party request up front while its ledger line could not be kept."""
    if not lines.accepting():
        raise LedgerBacklogged()


def record_use(
    lines: Spool,
    redis: Redis,
    *,
    connect: Callable[[], Any],
    account_id: str,
    client_id: str,
    grant_id: str | None,
    scope: str,
    method: str,
    path: str,
    application_id: str | None = None,
) -> None:
    """Spool the ledger line of one access; once a minute, the grant's last use."""
    title = SCOPES[scope].title_zh if scope in SCOPES else scope
    lines.write(
        ledger.line(
            account_id=account_id, at=clock.now(), accessor_type=CLIENT, accessor_id=client_id,
            accessor_name=client_name(connect, client_id), source="api", resource=f"{method} {path}",
            resource_name=title, purpose=f"第三方应用经您授权（{title}）", application_id=application_id,
            scope=scope,
        )
    )  # fmt: skip
    if grant_id and _due(grant_id) and redis.set(f"oauth:grant-used:{grant_id}", "1", nx=True, ex=60):
        with connect() as conn:
            conn.execute(update(OAuthGrant).where(OAuthGrant.id == grant_id).values(last_used_at=clock.now()))


def _due(grant_id: str) -> bool:
    """Whether this process should ask (Redis decides among processes) to move the last use."""
    now = time.monotonic()
    if now - _TOUCHED.get(grant_id, -_TOUCH_EVERY) < _TOUCH_EVERY:
        return False
    if len(_TOUCHED) > 10_000:
        for key in [k for k, at in _TOUCHED.items() if now - at >= _TOUCH_EVERY]:
            del _TOUCHED[key]
    _TOUCHED[grant_id] = now
    return True


def ledger_fields(view_args: dict[str, Any] | None) -> dict[str, Any]:
    """The application id of a request on an application's URL, for the ledger line."""
    app_id = (view_args or {}).get("app_id")
    return {"application_id": app_id} if isinstance(app_id, str) and len(app_id) <= 36 else {}
