"""`keys reencrypt-data` must reach every ciphertext yiwang stores, or an operator who retires the
old key after running it loses what it missed. These guards fail when a new encrypted column,
or a new place that encrypts, is added without telling the re-encryption about it."""

from __future__ import annotations

import re
from pathlib import Path

from core.db import Base
from domain.identity.rekey import COLUMNS
from factory import load_models

ROOT = Path(__file__).resolve().parents[3]
SOURCE_DIRS = (
    "api",
    "cli",
    "config",
    "core",
    "domain",
    "integrations",
    "miniprogram_bridge",
    "notifications",
    "workers",
)

# Every file that calls `Encryptor.encrypt`, how many times, and where those ciphertexts go. A
# new call (or a moved one) fails the test below: add it here only once `rekey` covers where it
# writes, or it expires on its own before an old key may be retired (and docs/identity.md says so).
ENCRYPTING = {
    "core/idempotency.py": (2, "Redis replays (rekey via IdempotencyStore.reencrypt) and their rewrite"),
    "core/signing_keys.py": (1, "signing_keys.private_key_enc"),
    "domain/accounts/service.py": (4, "channel_identities.value_enc, session_key_enc"),
    "domain/applications/detail_view.py": (1, "Redis view cache, re-rendered when unreadable"),
    "domain/applications/file_keys.py": (1, "the re-encryption of stored files itself"),
    "domain/applications/materials.py": (2, "blob storage (file_keys) and application_files.name_enc"),
    "domain/applications/prefill.py": (1, "applications.data_enc"),
    "domain/auth/sms_login.py": (1, "outbox_jobs.payload, rekey.JOB_FIELDS"),
    "domain/complaints/service.py": (2, "complaints.text_enc, complaint_events.text_enc"),
    "domain/evaluations/service.py": (1, "evaluations.reason_enc, rectification_tasks.appeal_reason_enc"),
    "domain/identity/binding.py": (2, "verified_identities.*_enc"),
    "domain/identity/rekey.py": (1, "the re-encryption itself"),
    "domain/identity/service.py": (3, "identity_verifications.*_enc"),
    "domain/operators/credentials.py": (1, "operators.totp_secret_enc, totp_pending_enc"),
    "domain/shared_data/service.py": (1, "shared_records.values_enc"),
    "domain/wallet/sync.py": (2, "wallet_certificates.holder_name_enc, number_enc"),
}


def test_every_encrypted_column_of_every_model_is_reencrypted():
    load_models()  # every table, not only those the imports above happened to reach
    covered = {(model.__table__.name, column) for model, column, _ in COLUMNS}
    encrypted = {
        (mapper.local_table.name, column.key)
        for mapper in Base.registry.mappers
        for column in mapper.columns
        if column.key.endswith("_enc")
    }
    assert encrypted, "no encrypted column found: the walk is broken"
    assert encrypted - covered == set(), "encrypted columns keys reencrypt-data leaves under the old key"
    assert covered - encrypted == set(), "COLUMNS names a column no model has"


def test_every_place_that_encrypts_is_accounted_for():
    found = {}
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            calls = len(re.findall(r"\.encrypt\(", path.read_text(encoding="utf-8")))
            if calls:
                found[path.relative_to(ROOT).as_posix()] = calls
    assert found == {path: calls for path, (calls, _) in ENCRYPTING.items()}
