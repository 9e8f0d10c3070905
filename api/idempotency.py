"""@idempotent: a write a phone may retry replays its first response for the same key."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, make_response, request

from api import multipart
from api.deps import services
from api.middleware import client_ip
from api.request_body import whole_body
from api.view_attrs import view_attr
from core.db import db
from core.idempotency import (
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    IdempotencyKeyInvalid,
    IdempotencyKeyRequired,
    StoredResponse,
)
from domain.accounts import profile_cache

HEADER = "Idempotency-Key"
# Headers of the first response a replay carries too: the version a phone edits next (ETag)
# and where a created object lives (Location).
REPLAYED_HEADERS = ("ETag", "Location")
# Where @idempotent leaves, in the view's flask-smorest doc info (`_apidoc`), whether the key is
# required; `document_key` turns it into the operation's header parameter.
_APIDOC = "idempotency_key"
_DESCRIPTION = (
    "One key per attempt: a retry with the same key and body replays the first answer (with "
    "Idempotent-Replayed: true) instead of doing it again. 400 idempotency.key_invalid for a "
    "malformed key, 422 idempotency.key_reused for the key sent again with another body. Two "
    "409s, told apart by error.code: idempotency.in_progress (retry the same key later), "
    "idempotency.replay_unavailable (check the state; a new key to do it again)"
)


def idempotent(
    view: Callable[..., Any] | None = None,
    *,
    ttl: int | Callable[[], int] | None = None,
    keep_accepted: bool = True,
    required: bool = False,
    per_session: bool = False,
    per_address: bool = False,
) -> Any:
    """Use on MethodView methods (`@idempotent` or `@idempotent(ttl=300)`).

    Without the header the request runs as usual. Authenticated calls are scoped to the
    account; public ones (logins, refresh) to the request body itself, because a phone that
    lost a response often retries from another network and so another IP. `ttl` shortens how
    long the first response is replayed (token endpoints: minutes, not a day); a callable is
    asked at each request (a lifetime the configuration sets).
    `keep_accepted=False` stores no 202: for views whose 202 means "ask again later" (a
    verification still pending at the provider), a retry must ask again, not replay.
    `required=True` refuses a request without the header (428): writes that must never happen
    twice, such as submitting an application.
    `per_session=True` scopes an operator's keys to the signed-in session: for answers that
    stop being true when the sessions end (a TOTP secret handed out pending, which a
    credentials reset discards along with every session), a retry from a later session runs
    again instead of replaying them.
    `per_address=True` scopes a public call's keys to the caller's address too: for public
    answers that hand out something only the caller should hold (the `challenge_id` of an SMS
    code, which names the code as its asker's), which anyone sending the same non-secret body
    with the same key would otherwise be replayed.
    """
    if view is None:
        return lambda v: _wrap(v, ttl, keep_accepted, required, per_session, per_address)
    return _wrap(view, ttl, keep_accepted, required, per_session, per_address)


def _wrap(
    view: Callable[..., Any],
    ttl: int | Callable[[], int] | None,
    keep_accepted: bool,
    required: bool,
    per_session: bool = False,
    per_address: bool = False,
) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            if required:
                raise IdempotencyKeyRequired()
            return view(*args, **kwargs)
        store = services().idempotency
        store.validate_key(key)
        principal = g.get("principal")
        early: EarlyClaim | None = g.get(_EARLY)
        # The early claim hashed this same request's body: once is enough.
        fingerprint = early.fingerprint if early is not None else _fingerprint()
        # An operator's keys are theirs alone. Public: only a client that sends the same body
        # (the same credential) can replay.
        operator = g.get("operator")
        scope = _scope(
            principal.owner if principal
            else _operator_scope(operator, per_session) if operator is not None
            else f"body:{fingerprint}@{client_ip()}" if per_address
            else f"body:{fingerprint}"
        )  # fmt: skip
        if early is not None and (early.scope, early.key, early.fingerprint) == (scope, key, fingerprint):
            early.used = True  # taken with the token check (api.auth.require_citizen)
            stored = store.begun(scope, key, fingerprint, taken=early.taken, raw=early.raw)
        else:
            stored = store.begin(scope, key, fingerprint)
        if stored is not None:
            resp = Response(stored.body, status=stored.status, content_type=stored.content_type)
            resp.headers.update(stored.headers)
            resp.headers["Idempotent-Replayed"] = "true"
            return resp
        # The cached views the view's commit makes stale are dropped with the stored response,
        # in its round trip to Redis; on any other way out, on their own.
        session = db.session()
        held = profile_cache.hold(session)
        try:
            try:
                resp = make_response(view(*args, **kwargs))
            except Exception:
                # Errors raised before a response exists leave nothing stored: the retry runs again.
                store.abandon(scope, key)
                raise
            if resp.status_code < 500 and (keep_accepted or resp.status_code != 202):
                store.complete(
                    scope, key, fingerprint,
                    StoredResponse(
                        resp.status_code, resp.get_data(), resp.content_type or "application/json",
                        {h: resp.headers[h] for h in REPLAYED_HEADERS if h in resp.headers},
                    ),
                    ttl=ttl() if callable(ttl) else ttl, alongside=held,
                )  # fmt: skip
            else:
                store.abandon(scope, key)
        finally:
            profile_cache.release(session)
            held.send()  # whatever was not sent with the stored response
        return resp

    wrapper._yiwang_idempotent = True  # type: ignore[attr-defined]
    wrapper._yiwang_idempotent_required = required  # type: ignore[attr-defined]
    # A copy: functools.wraps shares the view's doc info, which stays the view's own.
    wrapper._apidoc = {**getattr(view, "_apidoc", {}), _APIDOC: {"required": required}}  # type: ignore[attr-defined]
    return wrapper


def key_parameter(required: bool) -> dict[str, Any]:
    """The Idempotency-Key header as an OpenAPI parameter: the format `validate_key` checks,
    required where the request is refused without it."""
    prefix = "Required: without it the request is refused (428 idempotency.key_required). "
    return {
        "in": "header",
        "name": HEADER,
        "required": required,
        "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX_LENGTH, "pattern": KEY_PATTERN},
        "description": (prefix if required else "") + _DESCRIPTION,
    }


def document_key(doc: dict[str, Any], doc_info: dict[str, Any], **_: Any) -> dict[str, Any]:
    """flask-smorest's doc step for an operation (api/blueprint.py): an @idempotent view's
    operation declares the header. Parameters written by hand in `@blp.doc(parameters=...)`
    replace the generated list when flask-smorest adds them last, so the header joins those."""
    marked = doc_info.get(_APIDOC)
    if marked is None:
        return doc
    manual = doc_info.get("manual_doc", {})
    target = manual if "parameters" in manual else doc
    target.setdefault("parameters", []).append(key_parameter(marked["required"]))
    return doc


def _operator_scope(operator: Any, per_session: bool) -> str:
    who = f"operator:{operator.operator_id}"
    return f"{who}:session:{operator.session_id}" if per_session else who


def _fingerprint() -> str:
    # Keyed: bodies hold ID numbers and phones, and the fingerprint is stored in Redis.
    return services().hasher.hash_bytes(_content(), purpose="idempotency")


def _content() -> bytes:
    """What the request asks, as bytes two sendings of it share.

    The body (a JSON body as its value, whatever its key order and spacing), and for a raw file
    upload the name it gives (X-File-Name). A multipart form's
    bytes are not that: every HTTP library (wx.uploadFile, OkHttp, URLSession) draws a new
    boundary for each sending, so a retried upload never repeats them. Its parts are taken
    instead: each field's name and value, each file's field, name, type and SHA-256."""
    body = whole_body()  # first: a body cut at the size limit is a 413, whatever its type
    if request.mimetype == "multipart/form-data":
        parts = _form_parts() or _lenient_form_parts(body)
        if parts:
            return parts
    elif request.is_json and body:
        return _canonical_json(body)
    name = request.headers.get("X-File-Name")
    return body if name is None else body + b"\x00X-File-Name\x00" + name.encode("utf-8", "replace")


def _canonical_json(body: bytes) -> bytes:
    """A JSON body as its value: keys sorted, no spaces. Serializers need not keep key order
    (Swift's JSONEncoder without .sortedKeys draws it anew in each app launch), so a phone
    resending a stored request after a restart sends the same value in other bytes. A body
    that is not JSON stays as it is (the view refuses it)."""
    try:
        value = json.loads(body)
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    except (ValueError, RecursionError):
        return body


def _form_parts() -> bytes:
    parts: list[list[str]] = [["field", k, v] for k, v in sorted(request.form.items(multi=True))]
    for field, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
        digest, stream = hashlib.sha256(), upload.stream
        while chunk := stream.read(1 << 16):
            digest.update(chunk)
        stream.seek(0)  # the view reads the file next
        parts.append(["file", field, upload.filename or "", upload.mimetype, digest.hexdigest()])
    return json.dumps(parts, ensure_ascii=False).encode("utf-8", "surrogatepass") if parts else b""


def _lenient_form_parts(body: bytes) -> bytes:
    """A form werkzeug dropped (a GBK file name), read as the upload view reads it."""
    found = multipart.parts(body, request.mimetype_params.get("boundary", "")) or []
    parts: list[list[str]] = []
    for p in found:
        if p.filename is None:
            parts.append(["field", p.name or "", p.data.decode("utf-8", "replace")])
        else:
            digest = hashlib.sha256(p.data).hexdigest()
            parts.append(["file", p.name or "", p.filename, p.content_type or "", digest])
    return json.dumps(sorted(parts), ensure_ascii=False).encode("utf-8", "surrogatepass") if parts else b""


def _scope(who: str) -> str:
    """Whose key, for which request: the query string is part of it (a dry run and the real
    import of one document, sent with one key, are two requests, not a retry). Without one the
    scope is as it always was, so keys stored before keep answering their retries."""
    scope = f"{who}|{request.method}|{request.path}"
    query = request.query_string
    return f"{scope}?{query.decode('latin-1')}" if query else scope


_EARLY = "yiwang_idempotency_early"


@dataclass
class EarlyClaim:
    """An idempotency claim sent in the token check's Redis round trip (one trip fewer for
    every authenticated write that carries a key); the view's wrapper reads its outcome."""

    scope: str
    key: str
    fingerprint: str
    taken: bool = False
    raw: bytes | None = None
    used: bool = False

    def stage(self, pipe: Any) -> None:
        services().idempotency.stage_begin(pipe, self.scope, self.key, self.fingerprint)

    def take(self, results: list[Any]) -> None:
        self.taken, self.raw = bool(results[0]), results[1]


def early_claim(owner: str) -> EarlyClaim | None:
    """For an @idempotent view called with a well-formed key: the claim to send along with the
    token check of the request's `owner` (`Principal.owner`), remembered for the view (None otherwise)."""
    key = request.headers.get(HEADER)
    if key is None or not view_attr("_yiwang_idempotent"):
        return None
    try:
        services().idempotency.validate_key(key)
    except IdempotencyKeyInvalid:
        return None  # the view's wrapper answers 400
    claim = EarlyClaim(_scope(owner), key, _fingerprint())
    setattr(g, _EARLY, claim)
    return claim


def init_app(app: Flask) -> None:
    """Release a claim taken with the token check when the view never ran (revoked token,
    refused scope, any error before the view): the client's retry must not wait for it."""

    @app.teardown_request
    def _release_unused_claim(_exc: BaseException | None) -> None:
        claim: EarlyClaim | None = g.pop(_EARLY, None)
        if claim is not None and claim.taken and not claim.used:
            services().idempotency.abandon(claim.scope, claim.key)
