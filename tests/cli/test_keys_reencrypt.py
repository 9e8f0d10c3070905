"""`flask keys reencrypt-data` after a data-key rotation, as docs/identity.md tells an operator to
run it: afterwards the old key is removed from DATA_KEYS, and everything citizens and operators
wrote before still reads: identity, form, files, complaint, rating, certificates, shared data."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import String, Text, select

from core.audit import AuditEvent
from core.db import Base, db
from domain.applications.models import Application, ApplicationFile
from integrations.storage.base import StorageUnavailable
from tests.api.v1.applications.conftest import SS_CARD, create, get, jpeg, patch, relogin, seeded, upload  # noqa: F401
from tests.api.v1.test_sms_login import code_on_phone, deliver, send
from tests.complaints.test_complaints import file as complain
from tests.conftest import make_citizen
from tests.domain.applications.test_file_keys import _stored
from tests.domain.operators.factories import admin_headers, make_operator
from tests.evaluations.test_evaluations import _completed, rate
from tests.shared_data.conftest import verified_as
from tests.shared_data.test_sharing_flow import HUKOU_MOVE, married_home_owner, share

NEW_KID = "k2027"
NEW_KEY = b"0123456789abcdef"
ID_CARD = "11100000000019713D001"


@pytest.fixture
def sims(ecert_sim: Any, exchange_sim: Any, sms_sim: Any) -> Any:
    for sim in (ecert_sim, exchange_sim, sms_sim):
        httpx.post(f"{sim.url}_sim/reset").raise_for_status()
    return sms_sim


def _ring(monkeypatch: Any, enc: Any, keys: dict[str, bytes], active: str) -> None:
    """Change the key ring of the app's one Encryptor, as a restart with new DATA_KEYS would."""
    monkeypatch.setattr(enc, "_keys", keys)
    monkeypatch.setattr(enc, "active_kid", active)


def _old_ciphertexts(prefix: str) -> list[str]:
    """Every column value (text or JSON) that still holds a ciphertext starting with `prefix`."""
    session = db.session()
    session.rollback()
    found = []
    for table in Base.metadata.sorted_tables:
        columns = [
            c
            for c in table.columns
            if isinstance(c.type, String | Text) or c.type.__class__.__name__ == "JSON"
        ]
        for row in session.execute(select(*columns)).all() if columns else ():
            for column, value in zip(columns, row, strict=True):
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                if prefix in (text or ""):
                    found.append(f"{table.name}.{column.name}")
    session.rollback()
    return sorted(set(found))


def test_after_reencryption_the_old_key_can_be_removed(app, client, services, seeded, sims, monkeypatch):  # noqa: F811
    enc = services.encryptor
    old_kid, old_keys = enc.active_kid, dict(enc._keys)
    operator = admin_headers(client, make_operator(app, username="rotation-desk", roles=("case_operator",)))

    # Written under the old key: an identity, a form, uploaded files, a complaint with an answer
    # and an attachment, a rating with its reason, certificates, shared data, a queued SMS code.
    person = married_home_owner()
    who = verified_as(app, person)
    case_id = _completed(client, who)
    assert rate(client, who, case_id, level="不满意", reason="窗口让我跑了三次").status_code == 201
    draft = create(client, who, service_code=SS_CARD).get_json()
    form = {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
    assert patch(client, who, draft, form).status_code == 200
    photo = jpeg(color="green")
    evidence = upload(client, who, draft["id"], "id_card", photo, name="张三身份证.jpg").get_json()["id"]
    made = complain(client, who, text="窗口拒收这张身份证照片", attachments=[evidence]).get_json()
    reply = {"text": "已核实，请携带原件办理"}
    assert (
        client.post(f"/admin/v1/complaints/{made['id']}/reply", json=reply, headers=operator).status_code
        == 200
    )
    wallet = client.get("/v1/certificates", headers=who["headers"]).get_json()["certificates"]
    card = next(c for c in wallet if c["type_code"] == ID_CARD and c["own"])
    sharing = create(client, who, service_code=HUKOU_MOVE).get_json()
    shared = share(client, who, sharing)
    assert shared.status_code == 200, shared.get_json()
    spouse = shared.get_json()["data"]["spouse"]
    phone = "13912340077"
    assert send(client, phone).status_code == 202  # its SMS job waits in the outbox

    stored = db.session().get(ApplicationFile, evidence)
    assert stored.blob_key_id == old_kid
    assert services.applications.storage.get(stored.storage_key).startswith(f"v1.{old_kid}.".encode())
    assert _old_ciphertexts(f"v1.{old_kid}.") != []

    # Rotation: the new key is active, the old one still decrypts; then the command runs.
    _ring(monkeypatch, enc, {**old_keys, NEW_KID: NEW_KEY}, NEW_KID)
    result = app.test_cli_runner().invoke(args=["keys", "reencrypt-data", "--batch-size", "2"])
    assert result.exit_code == 0, result.output

    # The old key is retired: only the new one is configured.
    _ring(monkeypatch, enc, {NEW_KID: NEW_KEY}, NEW_KID)
    services.keyring.invalidate()
    db.session.remove()
    # Redis is left as it is: a cached application view under the old key is rendered afresh.
    who = relogin(app, who)  # tokens are signed with the re-encrypted signing key
    full = client.get("/v1/identity/full", query_string={"purpose": "view"}, headers=who["headers"])
    assert full.status_code == 200, full.get_json()
    assert full.get_json() == {"name": person.name, "id_number": person.id_number}
    assert get(client, who, draft["id"]).get_json()["data"]["ss_card_application"]["bank"] == "icbc"
    assert get(client, who, sharing["id"]).get_json()["data"]["spouse"] == spouse
    mine = client.get(f"/v1/complaints/{made['id']}", headers=who["headers"]).get_json()
    assert mine["text"] == "窗口拒收这张身份证照片"
    assert [e["text"] for e in mine["timeline"] if e["kind"] == "replied"] == ["已核实，请携带原件办理"]
    opened = client.get(f"/admin/v1/complaints/{made['id']}/attachments/{evidence}", headers=operator)
    assert opened.status_code == 200 and opened.data[:3] == b"\xff\xd8\xff"
    rating = client.get(f"/v1/applications/{case_id}/evaluation", headers=who["headers"]).get_json()
    assert rating["reason"] == "窗口让我跑了三次"
    monkeypatch.setattr(services.govdata.ecert, "base_url", "http://127.0.0.1:9/")  # the stored rows
    listed = client.get("/v1/certificates", headers=who["headers"]).get_json()
    assert listed["stale"] is True
    assert [c["holder_name"] for c in listed["certificates"] if c["id"] == card["id"]] == [
        card["holder_name"]
    ]
    assert deliver() == ["succeeded"] and len(code_on_phone(sims, phone)) == 6
    assert (
        db.session()
        .scalar(select(Application.data_enc).where(Application.id == draft["id"]))
        .startswith(f"v1.{NEW_KID}.")
    )
    # And the command said so: every place rewritten, nothing left under the old key.
    assert f"now uses key {NEW_KID}: the old keys can be removed" in result.output
    lines = dict(line.split("\t", 1) for line in result.output.splitlines() if "\t" in line)
    for place in ("complaints.text_enc", "complaint_events.text_enc", "applications.data_enc",
                  "application_files.name_enc", "application_files.<blob>", "evaluations.reason_enc",
                  "wallet_certificates.holder_name_enc", "shared_records.values_enc",
                  "outbox_jobs.payload[sms.send].data"):  # fmt: skip
        assert "rewritten 0" not in lines[place] and lines[place].endswith("left 0"), (place, lines[place])
    assert _old_ciphertexts(f"v1.{old_kid}.") == []


def test_a_value_under_a_key_no_longer_configured_is_reported_and_fails_the_command(
    app, client, services, monkeypatch
):
    enc = services.encryptor
    old_keys = dict(enc._keys)

    make_citizen(app)  # a phone, under the old key
    _ring(monkeypatch, enc, {NEW_KID: NEW_KEY}, NEW_KID)  # the old key removed too early
    result = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert result.exit_code == 1
    assert "channel_identities.value_enc (1)" in result.output and "Keep the old keys" in result.output
    assert "every stored ciphertext" not in result.output
    _ring(monkeypatch, enc, {**old_keys, NEW_KID: NEW_KEY}, NEW_KID)  # put back: the re-run finishes
    again = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert again.exit_code == 0, again.output


def _audited() -> dict[str, tuple]:
    """The audited runs of the command, by outcome."""
    session = db.session()
    session.rollback()
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "data_key.reencrypted")).all()
    return {e.outcome: (e.actor_type, e.actor_id, e.target_id, e.details) for e in events}


def test_each_run_is_audited_with_what_it_rewrote_and_left(app, services, monkeypatch):
    enc = services.encryptor
    old_keys = dict(enc._keys)
    make_citizen(app)  # a phone, under the old key
    _ring(monkeypatch, enc, {NEW_KID: NEW_KEY}, NEW_KID)  # the old key removed too early
    assert app.test_cli_runner().invoke(args=["keys", "reencrypt-data"]).exit_code == 1
    _ring(monkeypatch, enc, {**old_keys, NEW_KID: NEW_KEY}, NEW_KID)
    assert app.test_cli_runner().invoke(args=["keys", "reencrypt-data"]).exit_code == 0
    runs = _audited()
    assert set(runs) == {"partial", "ok"}
    assert runs["partial"][:3] == runs["ok"][:3] == ("system", "cli", NEW_KID)
    assert runs["partial"][3]["left"]["channel_identities.value_enc"] == 1
    assert runs["ok"][3]["left"] == {} and runs["ok"][3]["rewritten"] >= 2  # the phone, the signing key


def test_a_run_stopped_midway_has_shown_what_it_finished(app, services, db_session, monkeypatch):
    """File storage down after the database is done: the operator sees which places are done
    (kept: a re-run skips them) before the error, not nothing at all."""
    enc = services.encryptor
    file_id = _stored(db_session, services, make_citizen(app)["account_id"], b"a photo")
    _ring(monkeypatch, enc, {**dict(enc._keys), NEW_KID: NEW_KEY}, NEW_KID)

    def away(key: str) -> bytes:
        raise StorageUnavailable("blob store timed out")

    monkeypatch.setattr(services.applications.storage, "get", away)
    result = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert result.exit_code == 1 and isinstance(result.exception, StorageUnavailable)
    lines = dict(line.split("\t", 1) for line in result.output.splitlines() if "\t" in line)
    assert lines["channel_identities.value_enc"].endswith("rewritten 1\tleft 0")
    assert "application_files.<blob>" not in lines
    assert "re-run the command to finish" in result.output
    stopped = _audited()  # what was done and where it stopped, without the error's text
    assert set(stopped) == {"failed"} and stopped["failed"][:3] == ("system", "cli", NEW_KID)
    details = stopped["failed"][3]
    assert details["stopped_at"] == "application_files.<blob>" and details["error"] == "StorageUnavailable"
    assert details["done"]["channel_identities.value_enc"] == {"examined": 1, "rewritten": 1, "left": 0}
    assert "application_files.<blob>" not in details["done"] and "timed out" not in str(details)
    monkeypatch.undo()
    _ring(monkeypatch, enc, {**dict(enc._keys), NEW_KID: NEW_KEY}, NEW_KID)
    again = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert again.exit_code == 0, again.output
    assert set(_audited()) == {"failed", "ok"}
    lines = dict(line.split("\t", 1) for line in again.output.splitlines() if "\t" in line)
    assert lines["channel_identities.value_enc"].endswith("rewritten 0\tleft 0")  # done before
    assert lines["application_files.<blob>"] == "examined 1\trewritten 1\tleft 0"
    assert db_session.get(ApplicationFile, file_id).blob_key_id == NEW_KID


def test_a_run_whose_output_breaks_is_audited_as_stopped(app, services, db_session, monkeypatch):
    """The terminal goes away (`| head`, a closed SSH session) after the first place: the run
    stops there, and the audit log still says where, not nothing at all."""
    import click

    enc = services.encryptor
    make_citizen(app)
    _ring(monkeypatch, enc, {**dict(enc._keys), NEW_KID: NEW_KEY}, NEW_KID)
    echo = click.echo

    def broken(message=None, *args, **kwargs):
        if message and "\t" in str(message):
            raise BrokenPipeError(32, "Broken pipe")
        return echo(message, *args, **kwargs)

    monkeypatch.setattr(click, "echo", broken)
    result = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert result.exit_code == 1  # click's answer to a broken pipe
    stopped = _audited()
    assert set(stopped) == {"failed"}
    details = stopped["failed"][3]
    assert details["error"] == "GeneratorExit" and details["stopped_at"] in details["done"]
    assert "Broken pipe" not in result.output  # the operator is told the error's type, not its text


@pytest.mark.parametrize("size", ["0", "-1"])
def test_a_batch_size_below_one_is_refused_before_anything_runs(app, services, monkeypatch, size):
    """Not a run that examines nothing and then blames the old key (or a database error)."""
    enc = services.encryptor
    make_citizen(app)
    _ring(monkeypatch, enc, {**dict(enc._keys), NEW_KID: NEW_KEY}, NEW_KID)
    result = app.test_cli_runner().invoke(args=["keys", "reencrypt-data", "--batch-size", size])
    assert result.exit_code == 2 and "Invalid value for '--batch-size'" in result.output
    assert "examined" not in result.output and _audited() == {}
