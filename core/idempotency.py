"""Idempotency-Key store: the first response to a key is replayed for every retry of it."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from core.crypto import DecryptionError, Encryptor
from core.errors import AppError
from core.redis import Batch

# A key is 1-KEY_MAX_LENGTH visible ASCII characters (no spaces): KEY_PATTERN as an OpenAPI
# (ECMA-262) pattern, which `IdempotencyStore.validate_key` checks.
KEY_MAX_LENGTH = 128
KEY_PATTERN = "^[!-~]+$"


class IdempotencyInFlight(AppError):
    status = 409
    code = "idempotency.in_progress"
    message_zh = "相同的请求正在处理中，请稍后重试"
    message_en = "A request with this Idempotency-Key is still being processed"


class IdempotencyKeyReused(AppError):
    status = 422
    code = "idempotency.key_reused"
    message_zh = "该 Idempotency-Key 已用于另一个不同的请求"
    message_en = "This Idempotency-Key was already used for a different request"


class IdempotencyKeyInvalid(AppError):
    status = 400
    code = "idempotency.key_invalid"
    message_zh = "Idempotency-Key 格式无效（1-128 个 ASCII 可见字符，不含空格）"
    message_en = "Invalid Idempotency-Key (1-128 visible ASCII characters, no spaces)"


class IdempotencyKeyRequired(AppError):
    status = 428
    code = "idempotency.key_required"
    message_zh = "该操作需要携带 Idempotency-Key，以免网络重试时重复执行"
    message_en = "This request needs an Idempotency-Key so a retry never runs it twice"


class IdempotencyReplayUnavailable(AppError):
    """The first request with this key finished, but its stored answer cannot be read (its data
    key was removed from DATA_KEYS before `keys reencrypt-data` moved it). The write is never
    run again under the same key: the client checks the current state and, to do it again,
    sends a new key. `details.status` is what the first request answered."""

    status = 409
    code = "idempotency.replay_unavailable"
    message_zh = (
        "该请求此前已处理，但当时的结果已无法再次返回。"
        "请先刷新查看最新状态；如仍需操作，请使用新的 Idempotency-Key 重新发送"
    )
    message_en = (
        "This request was already processed, but its response can no longer be returned. Check the "
        "current state first; to do it again, send it with a new Idempotency-Key"
    )


@dataclass
class StoredResponse:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)  # the ones a replay must carry too


log = logging.getLogger(__name__)

_PURPOSE = "idempotency"
_PREFIX = "idem:"
REPLAYS_NAME = "redis.idem:<replay>"  # how the data-key rotation's reports name the stored responses

# KEYS[1] = a stored response; ARGV[1] = the value read, ARGV[2] = its rewrite. Replaced only
# while it is still the value read (an answer stored again meanwhile stays), its expiry kept.
_REPLACE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""


def _kid_of(ciphertext: str) -> str:
    """The key id a ciphertext names (`v1.<kid>.…`), for a log line: never any of its content."""
    parts = ciphertext.split(".", 2)
    return f"key {parts[1][:32]}" if len(parts) == 3 else "not a ciphertext"


class IdempotencyStore:
    """Stores encrypted responses under (scope, key) with a request fingerprint."""

    def __init__(self, redis: Redis, encryptor: Encryptor, *, ttl: int, lock_ttl: int = 60) -> None:
        self._redis = redis
        self._enc = encryptor
        self._ttl = ttl
        self._lock_ttl = lock_ttl
        self._replace = redis.register_script(_REPLACE)

    @staticmethod
    def validate_key(key: str) -> None:
        # ASCII only (a structured-field string): header bytes arrive as Latin-1, so a key in
        # UTF-8 would be taken or refused by which bytes its characters happen to encode to.
        if not (1 <= len(key) <= KEY_MAX_LENGTH) or not key.isascii() or not key.isprintable() or " " in key:
            raise IdempotencyKeyInvalid()

    def _name(self, scope: str, key: str) -> str:
        digest = hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
        return f"{_PREFIX}{digest}"

    def begin(self, scope: str, key: str, fingerprint: str) -> StoredResponse | None:
        """Return the stored response for a retry, or None after taking the in-flight lock."""
        pipe = Batch(self._redis)
        self.stage_begin(pipe, scope, key, fingerprint)
        taken, raw = pipe.execute()
        return self.begun(scope, key, fingerprint, taken=bool(taken), raw=raw)

    def stage_begin(self, pipe: Any, scope: str, key: str, fingerprint: str) -> None:
        """`begin`'s two commands (take the lock if free; read what holds the key), for a
        pipeline shared with other work; hand their results to `begun`."""
        name = self._name(scope, key)
        pipe.set(name, json.dumps({"state": "running", "fp": fingerprint}), nx=True, ex=self._lock_ttl)
        pipe.get(name)

    def begun(
        self, scope: str, key: str, fingerprint: str, *, taken: bool, raw: bytes | None
    ) -> StoredResponse | None:
        """The outcome of `stage_begin`: None when this request took the lock, the stored
        response of a finished first request, or 409 / 422."""
        if taken:
            return None
        if raw is None:  # expired between the two commands; try once more
            name = self._name(scope, key)
            lock = {"state": "running", "fp": fingerprint}
            if self._redis.set(name, json.dumps(lock), nx=True, ex=self._lock_ttl):
                return None
            raise IdempotencyInFlight()
        entry = json.loads(raw)
        if entry["fp"] != fingerprint:
            raise IdempotencyKeyReused()
        if entry["state"] == "running":
            raise IdempotencyInFlight()
        try:
            body = self._enc.decrypt_bytes(entry["body"], purpose=_PURPOSE)
        except DecryptionError:
            log.warning("idempotency: a stored response cannot be decrypted (%s)", _kid_of(entry["body"]))
            raise IdempotencyReplayUnavailable(details={"status": entry["status"]}) from None
        return StoredResponse(entry["status"], body, entry["content_type"], entry.get("headers") or {})

    def complete(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        resp: StoredResponse,
        *,
        ttl: int | None = None,
        alongside: Any | None = None,
    ) -> None:
        """Store the response for replays. `alongside.stage(pipe)` adds other commands to the
        same round trip (the cached views the request's commit made stale); `alongside.sent()`
        is called once the round trip went through."""
        entry = {
            "state": "done",
            "fp": fingerprint,
            "status": resp.status,
            "content_type": resp.content_type,
            "body": self._enc.encrypt(resp.body, purpose=_PURPOSE),
        }
        if resp.headers:
            entry["headers"] = resp.headers
        if alongside is None:
            self._redis.set(self._name(scope, key), json.dumps(entry), ex=ttl or self._ttl)
            return
        pipe = Batch(self._redis)
        pipe.set(self._name(scope, key), json.dumps(entry), ex=ttl or self._ttl)
        alongside.stage(pipe)
        pipe.execute()
        alongside.sent()

    def abandon(self, scope: str, key: str) -> None:
        """Release the lock after a server error so the client may retry the same key."""
        self._redis.delete(self._name(scope, key))

    def reencrypt(self, encryptor: Encryptor, *, batch_size: int = 500) -> dict[str, int]:
        """Rewrite the stored responses not under `encryptor`'s active key (after a data-key
        rotation), each keeping its expiry, so a retry still replays once the old key is gone.
        Counts examined, rewritten and left: still under another key, counted afresh once done
        (a response a process with the old active key stored meanwhile is not missed)."""
        examined = rewritten = 0
        for name, raw, body in self._stored(batch_size):
            examined += 1
            if body.startswith(encryptor.active_prefix()):
                continue
            try:
                plain = encryptor.decrypt_bytes(body, purpose=_PURPOSE)
            except DecryptionError:
                continue  # under a key no longer configured: counted as left below
            entry = {**json.loads(raw), "body": encryptor.encrypt(plain, purpose=_PURPOSE)}
            rewritten += int(self._replace(keys=[name], args=[raw, json.dumps(entry)]))
        active = encryptor.active_prefix()
        left = sum(1 for _, _, body in self._stored(batch_size) if not body.startswith(active))
        return {"examined": examined, "rewritten": rewritten, "left": left}

    def _stored(self, batch_size: int) -> Iterator[tuple[bytes, bytes, str]]:
        """(name, stored value, encrypted body) of every finished response (not the locks of
        requests still running), read `batch_size` names at a time."""
        cursor = None
        while cursor != 0:
            cursor, names = self._redis.scan(cursor or 0, match=f"{_PREFIX}*", count=batch_size)
            for name, raw in zip(names, self._redis.mget(names) if names else (), strict=True):
                try:
                    body = json.loads(raw)["body"] if raw is not None else None
                except (ValueError, KeyError, TypeError):
                    body = None
                if isinstance(body, str):
                    yield name, raw, body
