"""Data-key rotation: old keys keep decrypting, new writes use the active key, and the re-encrypt
command moves every stored ciphertext to the active key."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from config.settings import DEFAULT_DATA_KEYS
from core import clock
from core.crypto import DecryptionError, Encryptor, parse_keys
from domain.accounts.models import PHONE, ChannelIdentity
from domain.identity import binding, deps
from domain.identity.models import VerifiedIdentity
from domain.identity.rekey import rekey
from domain.operators.audit_log import CLI_ACTOR
from tests.conftest import make_citizen

NEW_KEY = "k2026:" + base64.b64encode(b"0123456789abcdef").decode()


def _identity(db_session, services, account_id):
    enc = services.encryptor
    row = VerifiedIdentity(
        account_id=account_id, id_lookup=binding.id_lookup(services.hasher, "110101199003078515"),
        name_enc=enc.encrypt("张三", purpose=deps.NAME_PURPOSE),
        id_number_enc=enc.encrypt("110101199003078515", purpose=deps.ID_PURPOSE),
        name_masked="张*", id_number_masked="110***********8515", level="L2", method="id_check",
        verified_at=clock.now(), updated_at=clock.now(),
    )  # fmt: skip
    db_session.add(row)
    db_session.commit()
    return row.id


def test_reencrypt_moves_every_value_to_the_active_key_and_is_rerunnable(app, services, db_session):
    who = make_citizen(app, phone="13912345678")
    identity_id = _identity(db_session, services, who["account_id"])
    old_kid = services.encryptor.active_kid
    rotated = Encryptor(parse_keys(f"{DEFAULT_DATA_KEYS},{NEW_KEY}"), "k2026")

    # Before: written under the old key, and the rotated ring still reads it.
    row = db_session.get(VerifiedIdentity, identity_id)
    assert rotated.key_id(row.id_number_enc) == old_kid
    assert rotated.decrypt(row.id_number_enc, purpose=deps.ID_PURPOSE) == "110101199003078515"

    reports = dict(
        rekey(
            db_session, encryptor=rotated, storage=services.applications.storage,
            replays=services.idempotency, actor=CLI_ACTOR, batch_size=1,
        )
    )  # fmt: skip
    assert reports["verified_identities.id_number_enc"] == {"examined": 1, "rewritten": 1, "left": 0}
    assert reports["channel_identities.value_enc"]["rewritten"] == 1
    assert reports["signing_keys.private_key_enc"]["rewritten"] >= 1

    db_session.expire_all()
    row = db_session.get(VerifiedIdentity, identity_id)
    phone = db_session.scalar(select(ChannelIdentity).where(ChannelIdentity.kind == PHONE))
    for value, purpose, plain in (
        (row.name_enc, deps.NAME_PURPOSE, "张三"),
        (row.id_number_enc, deps.ID_PURPOSE, "110101199003078515"),
        (phone.value_enc, "phone", "13912345678"),
    ):
        assert rotated.key_id(value) == "k2026"
        assert rotated.decrypt(value, purpose=purpose) == plain
        with pytest.raises(DecryptionError):  # the retired key alone no longer reads it
            Encryptor(parse_keys(DEFAULT_DATA_KEYS), old_kid).decrypt(value, purpose=purpose)

    again = dict(
        rekey(
            db_session, encryptor=rotated, storage=services.applications.storage,
            replays=services.idempotency, actor=CLI_ACTOR,
        )
    )  # fmt: skip
    assert all(r["rewritten"] == 0 for r in again.values())


def test_a_ciphertext_cannot_be_moved_to_another_column(services):
    enc = services.encryptor
    value = enc.encrypt("110101199003078515", purpose=deps.ID_PURPOSE)
    with pytest.raises(DecryptionError):
        enc.decrypt(value, purpose=deps.NAME_PURPOSE)
