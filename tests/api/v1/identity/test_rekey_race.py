"""`keys reencrypt-data` racing a completion: a verification that finishes (and erases its
encrypted name and ID number) while the rekey is mid-batch keeps them erased."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.crypto import Encryptor
from core.db import db
from domain.identity import rekey as rekey_mod
from domain.identity.models import IdentityVerification
from tests.api.v1.identity.conftest import complete, ref_of, start


def test_rekey_does_not_resurrect_erased_pii(app, client, app_citizen, sims, services, monkeypatch):
    body = start(client, app_citizen, "tencent_faceid").get_json()
    vid = body["verification"]["id"]
    sims["tencent_faceid"].perform(ref_of(body), "pass")

    real = services.encryptor
    new_kid = "rotated-kid"
    rotated = Encryptor({**real._keys, new_kid: b"\x11" * 16}, new_kid) if hasattr(real, "_keys") else None
    assert rotated is not None, dir(real)
    fired = []

    orig = rotated.encrypt

    def encrypt(plaintext, *, purpose):
        if not fired:  # the citizen's phone completes while rekey is mid-batch
            fired.append(complete(client, app_citizen, vid).status_code)
        return orig(plaintext, purpose=purpose)

    monkeypatch.setattr(rotated, "encrypt", encrypt)
    with Session(bind=db.engine) as s:
        rekey_mod.rekey(s, encryptor=rotated, storage=services.applications.storage)
    assert fired == [200]
    with Session(bind=db.engine) as s:
        row = s.get(IdentityVerification, vid)
        assert row.status == "passed"
        assert row.name_enc is None and row.id_number_enc is None and row.provider_ref_enc is None
