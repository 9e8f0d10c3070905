"""Re-encrypt uploaded files in blob storage under the active data key (after a key rotation).

Each blob is rewritten in place under its own key: `BlobStorage.put` replaces an object
atomically (a reader sees the whole old or the whole new one), and both decrypt while the old
key is still configured, so an interruption never leaves a row naming a missing or partial
object. The row then records the blob's key id (`blob_key_id`), committed at once so no lock is
held while the next blob is read and written; a re-run fetches only the rows not yet recorded
under the active key. The orphan sweep deletes a row before its blob: a row found gone when its
key id is recorded was swept meanwhile, and the blob the put may just have written back is
deleted again (a deleted file never comes back).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from core.crypto import DecryptionError, Encryptor
from domain.applications.materials import FILE_PURPOSE
from domain.applications.models import ApplicationFile
from integrations.storage.base import BlobNotFound, BlobStorage

NAME = "application_files.<blob>"  # how the reports name the stored files


@dataclass
class BlobReport:
    examined: int = 0
    rewritten: int = 0
    left: int = 0  # rows whose blob is still not known to be under the active key

    def as_dict(self) -> dict[str, int]:
        return {"examined": self.examined, "rewritten": self.rewritten, "left": self.left}


def _not_on(kid: str) -> ColumnElement[bool]:
    return or_(ApplicationFile.blob_key_id.is_(None), ApplicationFile.blob_key_id != kid)


def rekey_blobs(
    session: Session, *, encryptor: Encryptor, storage: BlobStorage, batch_size: int = 500
) -> dict[str, int]:
    """Rewrite every stored file not under the active key; counts (examined, rewritten, left)."""
    report = BlobReport()
    kid = encryptor.active_kid
    last = ""
    while True:
        rows = session.execute(
            select(ApplicationFile.id, ApplicationFile.storage_key)
            .where(ApplicationFile.id > last, _not_on(kid))
            .order_by(ApplicationFile.id)
            .limit(batch_size)
        ).all()
        session.commit()  # no transaction stays open while blobs are read and written
        if not rows:
            break
        last = rows[-1].id
        for row in rows:
            try:
                blob = storage.get(row.storage_key)
            except BlobNotFound:
                continue  # swept meanwhile, or lost: counted as left below if the row remains
            report.examined += 1
            try:
                token = blob.decode("ascii")
                rewrite = encryptor.key_id(token) != kid
                if rewrite:
                    plain = encryptor.decrypt_bytes(token, purpose=FILE_PURPOSE)
                    storage.put(row.storage_key, encryptor.encrypt(plain, purpose=FILE_PURPOSE).encode())
            except (DecryptionError, IndexError, ValueError):
                continue  # under a key no longer configured, or not a ciphertext: left below
            named = session.execute(
                update(ApplicationFile)
                .where(ApplicationFile.id == row.id, ApplicationFile.storage_key == row.storage_key)
                .values(blob_key_id=kid)
                .execution_options(synchronize_session=False)
            ).rowcount
            session.commit()  # at once: the next blob's read and write hold no lock (SQLite: the database's)
            if not named:
                # The sweep deleted the row meanwhile, then its blob, maybe before the put above:
                # the file the citizen deleted must not come back.
                storage.delete(row.storage_key)
            elif rewrite:
                report.rewritten += 1
    report.left = session.scalar(select(func.count()).select_from(ApplicationFile).where(_not_on(kid))) or 0
    session.commit()
    return report.as_dict()
