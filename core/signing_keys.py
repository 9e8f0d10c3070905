"""ES256 signing keys with key ids, stored encrypted; rotation keeps old keys verifying."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import audit, clock
from core.crypto import Encryptor
from core.db import Base, UTCDateTime

_PURPOSE = "signing-key"
PRIVATE_KEY_PURPOSE = _PURPOSE  # for re-encryption after a data-key rotation


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16), default="ES256")
    private_key_enc: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Signing stops at retired_at; verification continues until verify_until.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verify_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    private_key: Any
    public_key: Any
    public_jwk: str
    signing: bool


def create_key(session: Session, encryptor: Encryptor) -> SigningKey:
    """Generate a P-256 key and add it to the session (not committed)."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    now = clock.now()
    kid = now.strftime("%Y%m%d%H%M%S") + "-" + ECAlgorithm.to_jwk(private.public_key())[-10:]
    kid = "".join(c for c in kid if c.isalnum() or c == "-")
    row = SigningKey(
        kid=kid,
        private_key_enc=encryptor.encrypt(pem, purpose=_PURPOSE),
        public_jwk=ECAlgorithm.to_jwk(private.public_key()),
        created_at=now,
    )
    session.add(row)
    return row


def rotate(
    session: Session, encryptor: Encryptor, *, verify_grace: int, actor_type: str, actor_id: str | None
) -> SigningKey:
    """Make a new signing key; earlier keys stop signing but verify for `verify_grace` seconds.
    Audited in the same transaction (`signing_key.rotated`: the new kid, the kids retired and
    their grace; never a key), as `data_key.reencrypted` is for the data keys."""
    now = clock.now()
    retired = []
    for old in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        old.retired_at = now
        old.verify_until = now + timedelta(seconds=verify_grace)
        retired.append(old.kid)
    new = create_key(session, encryptor)
    audit.record(
        session, actor_type=actor_type, actor_id=actor_id, action="signing_key.rotated",
        target_type="signing_key", target_id=new.kid,
        details={"retired": sorted(retired), "verify_grace": verify_grace},
    )  # fmt: skip
    session.commit()
    return new


def ensure_key(session: Session, encryptor: Encryptor) -> None:
    """Create the first signing key if there is none (safe when several processes race)."""
    if session.scalar(select(SigningKey.kid).where(SigningKey.retired_at.is_(None)).limit(1)):
        return
    try:
        create_key(session, encryptor)
        session.commit()
    except IntegrityError:
        session.rollback()


class KeyRing:
    """Cached view of the signing keys; reloads periodically and on an unknown kid."""

    def __init__(self, session_factory: Any, encryptor: Encryptor, cache_seconds: int) -> None:
        self._session_factory = session_factory
        self._encryptor = encryptor
        self._cache_seconds = cache_seconds
        self._keys: dict[str, LoadedKey] = {}
        self._signing_kid: str | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def _load(self) -> None:
        session = self._session_factory()
        try:
            ensure_key(session, self._encryptor)
            now = clock.now()
            rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at)).all()
        finally:
            session.close()
        keys: dict[str, LoadedKey] = {}
        signing = None
        for row in rows:
            if row.verify_until is not None and row.verify_until <= now:
                continue
            pem = self._encryptor.decrypt(row.private_key_enc, purpose=_PURPOSE)
            private = serialization.load_pem_private_key(pem.encode(), password=None)
            is_signing = row.retired_at is None
            keys[row.kid] = LoadedKey(row.kid, private, private.public_key(), row.public_jwk, is_signing)
            if is_signing:
                signing = row.kid  # newest unretired key wins
        self._keys, self._signing_kid, self._loaded_at = keys, signing, time.monotonic()

    def _stale(self) -> bool:
        return not self._keys or time.monotonic() - self._loaded_at > self._cache_seconds

    def _fresh(self, force: bool = False) -> None:
        if force or self._stale():
            loaded_at = self._loaded_at
            with self._lock:
                # Threads that queued behind a reload do not reload again.
                if self._loaded_at == loaded_at and (force or self._stale()):
                    self._load()

    def signing_key(self) -> LoadedKey:
        self._fresh()
        assert self._signing_kid is not None
        return self._keys[self._signing_kid]

    def verification_key(self, kid: str) -> LoadedKey | None:
        self._fresh()
        if kid not in self._keys:
            # Another process may have rotated; reload at most once per second for unknown kids.
            if time.monotonic() - self._loaded_at > 1.0:
                self._fresh(force=True)
        return self._keys.get(kid)

    def public_jwks(self) -> list[dict]:
        self._fresh()
        out = []
        for key in self._keys.values():
            jwk = json.loads(key.public_jwk)
            jwk.update({"kid": key.kid, "alg": "ES256", "use": "sig"})
            out.append(jwk)
        return out

    def invalidate(self) -> None:
        self._loaded_at = 0.0
        self._keys = {}
