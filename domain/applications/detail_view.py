"""GET /v1/applications/{id} as the JSON bytes the phone receives, kept rendered in the view cache.

The full view (views.full) takes four queries, a decryption and a render; a phone polls it while
a case moves. The rendered bytes are cached per application and language
(domain/accounts/profile_cache.py drops them after every committed change to the application,
its materials, its shared-data records or its grant) with a stamp line naming the account that
owns it, the Beijing date it was rendered on (`overdue` moves only with the date) and its ETag.
A cached view is served only to its owner on its day; anything else reads the database, where
another account's request gets the usual 404.

The view holds what the citizen typed (names, ID numbers and addresses of family members, bank
details), so the cached body is encrypted like every other stored personal data (the data key,
with the cache key and the stamp line as associated data: a body copied under another
application's key or put under another stamp, another account's, day's or ETag's, does not
decrypt). A body that does not
decrypt (tampered with, or its data key retired) is a miss.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy.orm import Session

from core import clock
from core.crypto import DecryptionError
from domain.accounts.profile_cache import ProfileCache
from domain.applications import views
from domain.applications.deadlines import local_date
from domain.applications.deps import ApplicationDeps
from domain.applications.models import Application
from domain.applications.service import owned
from domain.applications.submission import Submitted


def etag(app: Application) -> str:
    """The ETag of an application's view: its revision, which If-Match on an autosave compares
    (materials attached without a new revision change the view but not this tag)."""
    return f'"r{app.revision}"'


def render(
    session: Session,
    deps: ApplicationDeps,
    app: Application,
    *,
    lang: str,
    known: Submitted | None = None,
) -> bytes:
    """The full view as a JSON body (the one encoding of it, cached or not); `known` as in
    views.full."""
    return views.json_body(views.full(session, deps, app, lang=lang, known=known))


def _stamp(account_id: str, day: str, tag: str) -> bytes:
    stamp = {"account": account_id, "date": day, "etag": tag}
    return json.dumps(stamp, separators=(",", ":")).encode() + b"\n"


# What a third-party app holding `applications.read` alone may see of one satisfied material.
_PROGRESS_MATERIAL_KEYS = ("kind", "attached_at")


def shows_form(*, third_party: bool, scopes: frozenset[str]) -> bool:
    """Whether the reader sees the form's content: the citizen's own apps do, and an app the
    citizen let fill in and submit for them (`applications.write`). An app with `applications.read`
    alone was consented to see "您在本平台办理的事项、进度和结果" (the services, their progress and
    results), not what the citizen typed into the form or wrote on the timeline."""
    return not third_party or "applications.write" in scopes


def progress_only(body: bytes) -> bytes:
    """The view without the form's content: no `data` or `provenance`, and of each material only
    whether and how (upload, reuse, e-certificate, shared data) and when it was satisfied, not
    which file or certificate."""
    view = json.loads(body)
    view.pop("data", None)
    view.pop("provenance", None)
    for material in view.get("materials") or []:
        material["satisfied_by"] = [
            {k: by.get(k) for k in _PROGRESS_MATERIAL_KEYS} for by in material.get("satisfied_by") or []
        ]
    return views.json_body(view)


def _purpose(key: str, stamp: bytes) -> str:
    """The associated data of a cached body: its key and its whole stamp line (owner, day, ETag),
    so a body is served only under the stamp it was stored with."""
    return f"view:{key}:{stamp.decode().rstrip()}"


def load(
    session: Callable[[], Session],
    deps: ApplicationDeps,
    cache: ProfileCache,
    *,
    account_id: str,
    app_id: str,
    lang: str,
) -> tuple[bytes, str]:
    """The view's body and ETag for the account's application: from the cache when it holds
    this application's view for this account, language and day; else rendered from the
    database (ApplicationNotFound for another account's) and cached. `session` is called only
    then."""
    key = ProfileCache.application_key(app_id, lang)
    day = local_date(clock.now()).isoformat()  # before rendering: a render after midnight misses
    raw = cache.get_key(key)
    if raw is not None:
        head, _, body = raw.partition(b"\n")
        try:
            stamp = json.loads(head)
        except ValueError:
            stamp = None
        fresh = isinstance(stamp, dict) and stamp.get("account") == account_id and stamp.get("date") == day
        if fresh and stamp.get("etag"):
            try:
                opened = deps.encryptor.decrypt_bytes(body.decode("ascii"), purpose=_purpose(key, head))
                return opened, str(stamp["etag"])
            except (DecryptionError, ValueError):
                pass  # rendered afresh below
    db = session()
    app = owned(db, account_id, app_id)
    body, tag = render(db, deps, app, lang=lang), etag(app)
    head = _stamp(account_id, day, tag)
    sealed = deps.encryptor.encrypt(body, purpose=_purpose(key, head)).encode("ascii")
    cache.put_key(key, head + sealed)
    return body, tag
