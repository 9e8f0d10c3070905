"""Re-encrypt personal data written under an older data key (after DATA_KEY_ACTIVE changes).

Old keys keep decrypting, so rotation never breaks reads; this moves every stored ciphertext
to the active key so an old key can eventually be retired: every encrypted column (`COLUMNS`;
tests/domain/identity/test_rekey_coverage.py fails when a mapped `*_enc` column is missing
here), the encrypted fields of outbox job payloads (`JOB_FIELDS`) and the uploaded files in blob
storage (domain/applications/file_keys.py). Batches commit one at a time and the command can
be re-run: rows already on the active key are skipped. Each report says how many values were
still not under the active key when it finished (`left`): decrypted under a key no longer
configured, or written meanwhile by a process still running with the old active key.

Not covered, because they expire on their own: the responses kept in Redis for idempotent
replays (IDEMPOTENCY_TTL) and the cached application views (re-rendered when unreadable).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from core.crypto import DecryptionError, Encryptor
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
from domain.operators.credentials import TOTP_PURPOSE
from domain.operators.models import Operator
from domain.shared_data.models import SharedRecord
from domain.shared_data.service import VALUES_PURPOSE
from domain.wallet.models import WalletCertificate
from domain.wallet.service import CERT_PURPOSE
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


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _rekey_column(
    session: Session, encryptor: Encryptor, model: type, column: str, purpose: str, batch_size: int
) -> RekeyReport:
    report = RekeyReport()
    attr = getattr(model, column)
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    for rows in _batches(session, model, column, batch_size):
        for row in rows:
            value = getattr(row, column)
            if not value:
                continue
            report.examined += 1
            if encryptor.key_id(value) == encryptor.active_kid:
                continue
            try:
                plain = encryptor.decrypt_bytes(value, purpose=purpose)
            except DecryptionError:
                continue  # its key is no longer configured: counted as left below
            # Only if the value is still the one read: a verification that finished (and
            # erased its personal data) or a re-verification meanwhile is not undone.
            done = session.execute(
                update(model)
                .where(pk == getattr(row, pk.key), attr == value)
                .values({column: encryptor.encrypt(plain, purpose=purpose)})
                .execution_options(synchronize_session=False)
            ).rowcount
            report.rewritten += done
        session.commit()
    # Counted afresh once done, so a value written meanwhile under an older key is not missed.
    report.left = (
        session.scalar(
            select(func.count())
            .select_from(model)
            .where(
                and_(
                    attr.is_not(None),
                    attr != "",
                    ~attr.like(_like_prefix(encryptor.active_prefix()), escape="\\"),
                )
            )
        )
        or 0
    )
    session.commit()
    return report


def _rekey_job_payloads(
    session: Session, encryptor: Encryptor, name: str, field: str, purpose: str, batch_size: int
) -> RekeyReport:
    report = RekeyReport()
    last = ""
    while True:
        ids = session.scalars(
            select(OutboxJob.id)
            .where(OutboxJob.name == name, OutboxJob.id > last)
            .order_by(OutboxJob.id)
            .limit(batch_size)
        ).all()
        if not ids:
            session.commit()
            return report
        last = ids[-1]
        # Locked and read afresh: a job that succeeds meanwhile has its secret erased
        # (core/outbox/dispatcher.py), and a rewrite must neither undo that nor be undone by it.
        jobs = session.execute(
            select(OutboxJob.id, OutboxJob.payload).where(OutboxJob.id.in_(ids)).with_for_update()
        ).all()
        for job in jobs:
            value = (job.payload or {}).get(field)
            if not isinstance(value, str) or not value:
                continue
            report.examined += 1
            if encryptor.key_id(value) == encryptor.active_kid:
                continue
            try:
                plain = encryptor.decrypt_bytes(value, purpose=purpose)
            except DecryptionError:
                report.left += 1
                continue
            payload = {**job.payload, field: encryptor.encrypt(plain, purpose=purpose)}
            session.execute(
                update(OutboxJob)
                .where(OutboxJob.id == job.id)
                .values(payload=payload)
                .execution_options(synchronize_session=False)
            )
            report.rewritten += 1
        session.commit()


def rekey(
    session: Session, *, encryptor: Encryptor, storage: BlobStorage, batch_size: int = 500
) -> dict[str, dict[str, int]]:
    """Rewrite every ciphertext not under the active key (columns, outbox payloads, stored
    files); returns counts per place: examined, rewritten, left (still under another key)."""
    reports: dict[str, dict[str, int]] = {}
    for model, column, purpose in COLUMNS:
        report = _rekey_column(session, encryptor, model, column, purpose, batch_size)
        reports[f"{model.__tablename__}.{column}"] = report.as_dict()
    for name, (field, purpose) in JOB_FIELDS.items():
        report = _rekey_job_payloads(session, encryptor, name, field, purpose, batch_size)
        reports[f"{OutboxJob.__tablename__}.payload[{name}].{field}"] = report.as_dict()
    reports[FILES_NAME] = rekey_blobs(session, encryptor=encryptor, storage=storage, batch_size=batch_size)
    return reports
