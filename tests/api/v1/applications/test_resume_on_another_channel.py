"""A draft begun in the app and resumed in the mini-program: a phone that saves the whole form as
it was shown (the verified name and ID number, the phone number masked) keeps the values behind
the masks and saves what the citizen typed, instead of refusing the save or storing the masks."""

from __future__ import annotations

from sqlalchemy import select

from domain.applications.models import Application
from domain.applications.prefill import decrypt_data
from tests.api.v1.applications.conftest import PASSPORT, create, get, patch, relogin


def test_the_form_saved_back_as_shown_keeps_the_masked_values(app, client, zhang, db_session):
    begun = create(client, zhang, service_code=PASSPORT).get_json()
    mini = relogin(app, zhang, channel="miniprogram")
    shown = get(client, mini, begun["id"]).get_json()
    assert "*" in shown["data"]["applicant"]["phone"]
    saved = patch(
        client, mini, shown, {"applicant": shown["data"]["applicant"], "passport": {"occupation": "退休"}}
    )
    assert saved.status_code == 200, saved.get_json()
    after = saved.get_json()
    assert after["data"]["applicant"] == shown["data"]["applicant"]
    assert after["data"]["passport"] == {"occupation": "退休"}
    assert (
        after["provenance"]["applicant.phone"] == shown["provenance"]["applicant.phone"]
    )  # still the account's
    row = db_session.scalar(select(Application).where(Application.id == begun["id"]))
    data = decrypt_data(app.extensions["yiwang"].applications.encryptor, row.data_enc)
    assert "*" not in data["applicant"]["phone"] and data["applicant"]["id_number"] == zhang["id_number"]


def test_a_masked_value_changed_is_still_refused_or_checked(app, client, zhang):
    begun = create(client, zhang, service_code=PASSPORT).get_json()
    other = dict(begun["data"]["applicant"], name="王*")  # not what was shown
    refused = patch(client, zhang, begun, {"applicant": other})
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "application.field_read_only"
    typed = patch(client, zhang, begun, {"applicant": {"phone": "13912345678"}})
    assert typed.status_code == 200 and typed.get_json()["provenance"]["applicant.phone"]["source"] == "user"
