"""Re-encrypt personal data written under an older data key (after DATA_KEY_ACTIVE changes).

Old keys keep decrypting, so rotation never breaks reads; this moves every stored ciphertext
to the active key so an old key can eventually be retired. Batches commit one at a time and
the command can be re-run: rows already on the active key are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.crypto import Encryptor
from core.signing_keys import PRIVATE_KEY_PURPOSE as SIGNING_KEY_PURPOSE
from core.signing_keys import SigningKey
from domain.accounts.models import ChannelIdentity
from domain.accounts.service import PHONE_PURPOSE, SESSION_KEY_PURPOSE
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE, REF_PURPOSE
from domain.identity.models import IdentityVerification, VerifiedIdentity
from domain.operators.credentials import TOTP_PURPOSE
from domain.operators.models import Operator

# (model, column attribute, associated-data purpose) of every encrypted column.
COLUMNS = (
    (VerifiedIdentity, "name_enc", NAME_PURPOSE),
    (VerifiedIdentity, "id_number_enc", ID_PURPOSE),
    (IdentityVerification, "name_enc", NAME_PURPOSE),
    (IdentityVerification, "id_number_enc", ID_PURPOSE),
    (IdentityVerification, "provider_ref_enc", REF_PURPOSE),
    (ChannelIdentity, "value_enc", PHONE_PURPOSE),
    (ChannelIdentity, "session_key_enc", SESSION_KEY_PURPOSE),
    (Operator, "totp_secret_enc", TOTP_PURPOSE),
    (SigningKey, "private_key_enc", SIGNING_KEY_PURPOSE),
)


@dataclass
class RekeyReport:
    examined: int = 0
    rewritten: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"examined": self.examined, "rewritten": self.rewritten}


def _batches(session: Session, model: type, column: str, size: int) -> Iterator[list]:
    last = ""
    attr = getattr(model, column)
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    while True:
        query = select(model).where(pk > last, attr.is_not(None)).order_by(pk).limit(size)
        rows = session.scalars(query).all()
        if not rows:
            return
        last = getattr(rows[-1], pk.key)
        yield list(rows)


def rekey(session: Session, *, encryptor: Encryptor, batch_size: int = 500) -> dict[str, dict[str, int]]:
    """Rewrite every ciphertext not under the active key; returns counts per column."""
    reports: dict[str, dict[str, int]] = {}
    for model, column, purpose in COLUMNS:
        report = RekeyReport()
        pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
        for rows in _batches(session, model, column, batch_size):
            for row in rows:
                value = getattr(row, column)
                if not value:
                    continue
                report.examined += 1
                if encryptor.key_id(value) == encryptor.active_kid:
                    continue
                plain = encryptor.decrypt_bytes(value, purpose=purpose)
                # Only if the value is still the one read: a verification that finished (and
                # erased its personal data) or a re-verification meanwhile is not undone.
                done = session.execute(
                    update(model)
                    .where(pk == getattr(row, pk.key), getattr(model, column) == value)
                    .values({column: encryptor.encrypt(plain, purpose=purpose)})
                    .execution_options(synchronize_session=False)
                ).rowcount
                report.rewritten += done
            session.commit()
        reports[f"{model.__tablename__}.{column}"] = report.as_dict()
    return reports
