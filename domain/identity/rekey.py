"""Re-encrypt personal data written under an older data key (after DATA_KEY_ACTIVE changes).

Old keys keep decrypting, so rotation never breaks reads; this moves every stored ciphertext
to the active key so an old key can eventually be retired: every encrypted column (`COLUMNS`;
tests/domain/identity/test_rekey_coverage.py fails when a mapped `*_enc` column is missing
here), the encrypted fields of outbox job payloads (`JOB_FIELDS`), the uploaded files in blob
storage (domain/applications/file_keys.py) and the responses kept in Redis for idempotent
replays (core/idempotency.py: a retried submission must still replay once the old key is gone).
Every rewrite is conditional on the value still being the one read, so nothing erased or
replaced meanwhile comes back. Batches commit one at a time and the command can be re-run:
values already on the active key are skipped. Each place is reported as soon as it is done, with
how many values were still not under the active key when it finished (`left`): under a key no
longer configured, or written meanwhile by a process still running with the old active key.
A finished run is audited (`data_key.reencrypted`), and so is a run stopped by an error
(outcome `failed`: the places done and the one it stopped at).

Not covered: the cached application views in Redis (rendered afresh when unreadable).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.crypto import DecryptionError, Encryptor
from core.idempotency import REPLAYS_NAME, IdempotencyStore
from core.outbox.models import OutboxJob
from core.signing_keys import PRIVATE_KEY_PURPOSE as SIGNING_KEY_PURPOSE
from core.signing_keys import SigningKey
from domain.accounts.models import ChannelIdentity
from domain.accounts.service import PHONE_PURPOSE, SESSION_KEY_PURPOSE
from domain.applications.file_keys import NAME as FILES_NAME
from domain.applications.file_keys import rekey_blobs
from domain.applications.materials import FILE_PURPOSE
from domain.applications.models import Application, ApplicationFile
from domain.applications.prefill import DATA_PURPOSE
from domain.auth.sms_login import SMS_JOB, SMS_JOB_PURPOSE
from domain.complaints.models import Complaint, ComplaintEvent
from domain.complaints.service import PURPOSE as COMPLAINT_PURPOSE
from domain.evaluations.models import Evaluation, RectificationTask
from domain.evaluations.service import APPEAL_PURPOSE, REASON_PURPOSE
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE, REF_PURPOSE
from domain.identity.models import IdentityVerification, VerifiedIdentity
from domain.operators import audit_log
from domain.operators.audit_log import Actor
from domain.operators.credentials import TOTP_PURPOSE
from domain.operators.models import Operator
from domain.shared_data.models import SharedRecord
from domain.shared_data.service import VALUES_PURPOSE
from domain.wallet.models import WalletCertificate
from domain.wallet.sync import CERT_PURPOSE
from integrations.storage.base import BlobStorage

# (model, column attribute, associated-data purpose) of every encrypted column: the purpose the
# code that writes the column encrypts with, so the value decrypts and re-encrypts unchanged.
COLUMNS = (
    (VerifiedIdentity, "name_enc", NAME_PURPOSE),
    (VerifiedIdentity, "id_number_enc", ID_PURPOSE),
    (IdentityVerification, "name_enc", NAME_PURPOSE),
    (IdentityVerification, "id_number_enc", ID_PURPOSE),
    (IdentityVerification, "provider_ref_enc", REF_PURPOSE),
    (ChannelIdentity, "value_enc", PHONE_PURPOSE),
    (ChannelIdentity, "session_key_enc", SESSION_KEY_PURPOSE),
    (Operator, "totp_secret_enc", TOTP_PURPOSE),
    (Operator, "totp_pending_enc", TOTP_PURPOSE),
    (SigningKey, "private_key_enc", SIGNING_KEY_PURPOSE),
    (Application, "data_enc", DATA_PURPOSE),
    (ApplicationFile, "name_enc", FILE_PURPOSE),
    (Complaint, "text_enc", COMPLAINT_PURPOSE),
    (ComplaintEvent, "text_enc", COMPLAINT_PURPOSE),
    (Evaluation, "reason_enc", REASON_PURPOSE),
    (RectificationTask, "appeal_reason_enc", APPEAL_PURPOSE),
    (WalletCertificate, "holder_name_enc", CERT_PURPOSE),
    (WalletCertificate, "number_enc", CERT_PURPOSE),
    (SharedRecord, "values_enc", VALUES_PURPOSE),
)

# Outbox jobs whose payload carries a ciphertext: job name -> (payload key, purpose). A failed
# SMS job keeps its encrypted phone and code until an operator replays or forgets it.
JOB_FIELDS = {SMS_JOB: ("data", SMS_JOB_PURPOSE)}


@dataclass
class RekeyReport:
    examined: int = 0
    rewritten: int = 0
    left: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"examined": self.examined, "rewritten": self.rewritten, "left": self.left}


@dataclass(frozen=True)
class _Place:
    """Where the ciphertexts of one purpose are kept: a column, or one key of the objects in a
    JSON column (`key`), in the rows `where` selects; `name` is how the reports call it."""

    name: str
    model: Any
    column: str
    purpose: str
    key: str | None = None
    where: tuple[Any, ...] = ()

    @property
    def stored(self) -> Any:
        return getattr(self.model, self.column)

    @property
    def token(self) -> Any:
        """The ciphertext, as SQL."""
        return self.stored if self.key is None else self.stored[self.key].as_string()

    def read(self) -> tuple[Any, ...]:
        """What a batch reads of each row: its id, the ciphertext, and for a JSON column the
        whole object (the rest of it is written back unchanged)."""
        whole = () if self.key is None else (self.stored.label("stored"),)
        return (self.model.__mapper__.primary_key[0].label("id"), self.token.label("token"), *whole)

    def with_token(self, row: Any, token: str) -> Any:
        """The column's new value: the ciphertext replaced, anything else in it kept."""
        return token if self.key is None else {**row.stored, self.key: token}


PLACES = (
    *(
        _Place(f"{model.__tablename__}.{column}", model, column, purpose)
        for model, column, purpose in COLUMNS
    ),
    *(
        _Place(
            f"{OutboxJob.__tablename__}.payload[{job}].{field}",
            OutboxJob,
            "payload",
            purpose,
            key=field,
            where=(OutboxJob.name == job,),
        )
        for job, (field, purpose) in JOB_FIELDS.items()
    ),
)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _rekey_place(session: Session, encryptor: Encryptor, place: _Place, batch_size: int) -> RekeyReport:
    report = RekeyReport()
    pk = place.model.__mapper__.primary_key[0]
    token = place.token
    held = (token.is_not(None), token != "", *place.where)
    active = encryptor.active_prefix()
    last = ""
    while True:
        rows = session.execute(
            select(*place.read()).where(pk > last, *held).order_by(pk).limit(batch_size)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        for row in rows:
            report.examined += 1
            if row.token.startswith(active):
                continue
            try:
                plain = encryptor.decrypt_bytes(row.token, purpose=place.purpose)
            except DecryptionError:
                continue  # its key is no longer configured: counted as left below
            # Only if the value is still the one read: a verification that finished (and erased
            # its personal data), a sent SMS (its phone and code erased) or a re-verification
            # meanwhile is not undone.
            fresh = place.with_token(row, encryptor.encrypt(plain, purpose=place.purpose))
            report.rewritten += session.execute(
                update(place.model)
                .where(pk == row.id, token == row.token)
                .values({place.column: fresh})
                .execution_options(synchronize_session=False)
            ).rowcount
        session.commit()
    # Counted afresh once done, so a value written meanwhile under an older key is not missed.
    report.left = (
        session.scalar(
            select(func.count())
            .select_from(place.model)
            .where(*held, ~token.like(_like_prefix(active), escape="\\"))
        )
        or 0
    )
    session.commit()
    return report


def rekey(
    session: Session,
    *,
    encryptor: Encryptor,
    storage: BlobStorage,
    replays: IdempotencyStore,
    actor: Actor,
    batch_size: int = 500,
) -> Iterator[tuple[str, dict[str, int]]]:
    """Rewrite every ciphertext not under the active key (columns, outbox payloads, stored
    files, stored idempotent replays); yields each place as soon as it is done, with its counts:
    examined, rewritten, left (still under another key). Once all are done the run is audited
    (`data_key.reencrypted`: the key, how many were rewritten, the places with values left). A
    run stopped by an error (or interrupted, or no longer read) is audited too, outcome `failed`,
    with the places done, the one it stopped at and the error's type (never its text: it may
    quote a value), before the error goes on to the caller."""
    reports: dict[str, dict[str, int]] = {}
    at = ""
    try:
        for place in PLACES:
            at = place.name
            reports[place.name] = _rekey_place(session, encryptor, place, batch_size).as_dict()
            yield place.name, reports[place.name]
        at = FILES_NAME
        reports[FILES_NAME] = rekey_blobs(
            session, encryptor=encryptor, storage=storage, batch_size=batch_size
        )
        yield FILES_NAME, reports[FILES_NAME]
        at = REPLAYS_NAME
        reports[REPLAYS_NAME] = replays.reencrypt(encryptor, batch_size=batch_size)
        yield REPLAYS_NAME, reports[REPLAYS_NAME]
    except BaseException as exc:  # also GeneratorExit: the caller stopped reading (its output broke)
        _record_stop(session, actor, encryptor.active_kid, done=reports, stopped_at=at, error=exc)
        raise
    left = {name: counts["left"] for name, counts in reports.items() if counts["left"]}
    audit_log.record(
        session, actor, "data_key.reencrypted", target_type="data_key", target_id=encryptor.active_kid,
        outcome="partial" if left else "ok",
        details={"rewritten": sum(counts["rewritten"] for counts in reports.values()), "left": left},
    )  # fmt: skip
    session.commit()


def _record_stop(
    session: Session,
    actor: Actor,
    kid: str,
    *,
    done: dict[str, dict[str, int]],
    stopped_at: str,
    error: BaseException,
) -> None:
    """Audit a run that stopped (`data_key.reencrypted`, outcome `failed`); the batches it
    committed are kept. When the database itself is what failed, nothing can be recorded and
    the caller's error is what the operator sees."""
    try:
        session.rollback()
        audit_log.record(
            session, actor, "data_key.reencrypted", target_type="data_key", target_id=kid, outcome="failed",
            details={"done": done, "stopped_at": stopped_at, "error": type(error).__name__},
        )  # fmt: skip
        session.commit()
    except Exception:
        session.rollback()
