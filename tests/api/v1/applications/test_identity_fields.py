"""A draft begun before the citizen verified their identity: what was typed into the fields the
form binds to the identity is replaced by the verified identity at submission, so the department
never gets a name or ID number other than the verified person's."""

from __future__ import annotations

from sqlalchemy import select

from core.db import db
from domain.applications.models import Application
from domain.applications.prefill import decrypt_data
from domain.identity import hall
from integrations.realname.people import DEMO_PEOPLE
from tests.api.v1.applications.conftest import SS_CARD, create, get, jpeg, patch, submit, upload
from tests.conftest import make_citizen


def test_typed_identity_fields_give_way_to_the_verified_identity_at_submission(app, client, seeded):
    who = make_citizen(app)  # a phone login: nothing verified yet
    draft = create(client, who, service_code=SS_CARD).get_json()
    assert {"applicant.name", "applicant.id_number"} <= set(draft["prefill_missing"])
    someone_else = {"name": DEMO_PEOPLE[1][0], "id_number": DEMO_PEOPLE[1][1]}
    typed = patch(client, who, draft, {
        "applicant": someone_else, "ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"},
    })  # fmt: skip
    assert typed.status_code == 200, typed.get_json()
    svc = app.extensions["yiwang"]
    name, id_number = DEMO_PEOPLE[0][0], DEMO_PEOPLE[0][1]
    hall.record_in_person(
        db.session(), deps=svc.identity, operator_id="op-test", account_id=who["account_id"],
        name=name, id_number=id_number, hall="天河区政务服务中心", request_id=None,
    )  # fmt: skip
    for material in ("id_card", "insurance"):
        assert upload(client, who, draft["id"], material, jpeg()).status_code == 201
    done = submit(client, who, get(client, who, draft["id"]).get_json())
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body["data"]["applicant"]["name"] == name[0] + "*" * (len(name) - 1)
    assert id_number not in done.get_data(as_text=True) and someone_else["name"] not in str(body["data"])
    prov = body["provenance"]["applicant.id_number"]
    assert (prov["source"], prov["verified"], prov["read_only"]) == ("identity.id_number", True, True)
    db.session.remove()
    row = db.session().scalar(select(Application).where(Application.id == draft["id"]))
    stored = decrypt_data(svc.encryptor, row.data_enc)
    assert (stored["applicant"]["name"], stored["applicant"]["id_number"]) == (name, id_number)
    assert stored["ss_card_application"] == {"bank": "icbc"}  # the rest as the citizen wrote it
