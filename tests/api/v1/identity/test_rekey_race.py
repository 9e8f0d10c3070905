"""`keys reencrypt-data` racing what erases personal data: a verification that finishes (and
erases its encrypted name and ID number), or an SMS sent (its job's encrypted phone and code
erased), while the rekey is mid-batch keeps them erased."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.crypto import Encryptor
from core.db import db
from core.outbox.models import OutboxJob
from domain.auth.sms_login import SMS_JOB, SMS_JOB_PURPOSE
from domain.identity import rekey as rekey_mod
from domain.identity.models import IdentityVerification
from domain.operators.audit_log import CLI_ACTOR
from tests.api.v1.identity.conftest import complete, ref_of, start
from tests.api.v1.test_sms_login import code_on_phone, deliver, send
from tests.concurrency import Competing


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
        places = rekey_mod.rekey(
            s, encryptor=rotated, storage=services.applications.storage, replays=services.idempotency,
            actor=CLI_ACTOR,
        )  # fmt: skip
        list(places)
    assert fired == [200]
    with Session(bind=db.engine) as s:
        row = s.get(IdentityVerification, vid)
        assert row.status == "passed"
        assert row.name_enc is None and row.id_number_enc is None and row.provider_ref_enc is None


def _in_context(app, work):
    with app.app_context():
        return work()


def test_an_sms_sent_while_the_rekey_runs_keeps_its_phone_and_code_erased(
    app, client, sms_sim, services, monkeypatch
):
    """The worker sends the message (and erases the job's encrypted phone and code) between the
    rekey's read of the job and its rewrite: the rewrite must not put them back."""
    httpx.post(f"{sms_sim.url}_sim/reset").raise_for_status()
    assert send(client, "13912340088").status_code == 202
    enc = services.encryptor
    old_keys = dict(enc._keys)
    # Every process now runs with the new active key (the worker too), the old one still decrypts.
    monkeypatch.setattr(enc, "_keys", {**old_keys, "rotated-kid": b"\x11" * 16})
    monkeypatch.setattr(enc, "active_kid", "rotated-kid")
    real, others = enc.encrypt, []

    def encrypt(plaintext, *, purpose):
        if purpose == SMS_JOB_PURPOSE and not others:  # the worker runs the job meanwhile
            others.append(Competing(app, lambda _http: _in_context(app, deliver)))
        return real(plaintext, purpose=purpose)

    monkeypatch.setattr(enc, "encrypt", encrypt)
    with Session(bind=db.engine) as s:
        reports = dict(
            rekey_mod.rekey(
                s, encryptor=enc, storage=services.applications.storage, replays=services.idempotency,
                actor=CLI_ACTOR,
            )
        )  # fmt: skip
    assert others and others[0].result() == ["succeeded"]
    assert len(code_on_phone(sms_sim, "13912340088")) == 6
    assert reports["outbox_jobs.payload[sms.send].data"]["left"] == 0
    with Session(bind=db.engine) as s:
        [job] = s.scalars(select(OutboxJob).where(OutboxJob.name == SMS_JOB)).all()
        assert job.status == "succeeded"
        assert "data" not in job.payload  # the phone and code are gone, as for any message sent
