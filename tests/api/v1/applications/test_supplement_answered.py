"""A supplement (补正) that names fields or materials is answered by changing one of them: a
resubmission that changes nothing it names is refused with the named items as the problems,
so the phone shows what to change instead of sending the case back as it was."""

from __future__ import annotations

from domain.applications.models import Application
from tests.api.v1.applications.conftest import URL, error_code, get, jpeg, patch, stage, submit, upload
from tests.api.v1.applications.test_lifecycle import _submitted


def _asked(client, who, officer, **named):
    case = _submitted(client, who)
    assert stage(client, officer, case["id"], "received").status_code == 200
    asked = stage(client, officer, case["id"], "supplement_requested", note="请补正", **named)
    assert asked.status_code == 200, asked.get_json()
    return get(client, who, case["id"]).get_json()


def test_a_resubmission_that_changes_nothing_named_is_refused_with_what_to_change(client, zhang, officer):
    current = _asked(client, zhang, officer, fields=["ss_card_application.outlet"], materials=["insurance"])
    assert current["supplement"]["answered"] is False
    refused = submit(client, zhang, current, consent=False)
    assert refused.status_code == 422 and error_code(refused) == "application.invalid"
    problems = refused.get_json()["error"]["fields"]
    assert set(problems) == {"data.ss_card_application.outlet", "materials.insurance"}
    assert "补正" in problems["data.ss_card_application.outlet"][0]
    after = get(client, zhang, current["id"]).get_json()
    assert after["status"] == "supplement_requested" and after["submission_version"] == 1  # nothing written


def test_the_refusal_speaks_english_on_request(client, zhang, officer):
    current = _asked(client, zhang, officer, fields=["ss_card_application.outlet"])
    refused = client.post(
        f"{URL}/{current['id']}/submit", json={},
        headers=zhang["headers"] | {"Idempotency-Key": "unchanged-en", "Accept-Language": "en"},
    )  # fmt: skip
    assert refused.status_code == 422
    assert "supplement" in refused.get_json()["error"]["fields"]["data.ss_card_application.outlet"][0]


def test_changing_a_named_field_answers_the_supplement(client, zhang, officer):
    current = _asked(client, zhang, officer, fields=["ss_card_application.outlet"], materials=["insurance"])
    assert patch(client, zhang, current, {"ss_card_application": {"outlet": "体育西支行"}}).status_code == 200
    current = get(client, zhang, current["id"]).get_json()
    assert current["supplement"]["answered"] is True
    done = submit(client, zhang, current, consent=False)
    assert done.status_code == 200 and done.get_json()["status"] == "resubmitted"


def test_adding_a_named_material_answers_the_supplement(client, zhang, officer):
    current = _asked(client, zhang, officer, materials=["insurance"])
    assert upload(client, zhang, current["id"], "insurance", jpeg()).status_code == 201
    done = submit(client, zhang, get(client, zhang, current["id"]).get_json(), consent=False)
    assert done.status_code == 200 and done.get_json()["status"] == "resubmitted"


def test_a_failed_change_does_not_answer_the_supplement(client, zhang, officer):
    """An upload refused (a file that lies about its type) changed nothing."""
    current = _asked(client, zhang, officer, materials=["insurance"])
    bad = upload(client, zhang, current["id"], "insurance", b"%PDF-1.4 not really", name="x.jpg")
    assert bad.status_code == 422
    assert (
        submit(client, zhang, get(client, zhang, current["id"]).get_json(), consent=False).status_code == 422
    )


def test_an_empty_autosave_does_not_answer_the_supplement(client, zhang, officer):
    current = _asked(client, zhang, officer, fields=["ss_card_application.outlet"])
    assert patch(client, zhang, current, {}).status_code == 200
    assert (
        submit(client, zhang, get(client, zhang, current["id"]).get_json(), consent=False).status_code == 422
    )


def test_a_supplement_recorded_before_this_rule_is_resubmitted_as_before(client, zhang, officer, db_session):
    """A supplement stored without `answered` (asked before the rule existed) is not held to it."""
    current = _asked(client, zhang, officer, fields=["ss_card_application.outlet"])
    row = db_session.get(Application, current["id"])
    row.supplement = {k: v for k, v in row.supplement.items() if k != "answered"}
    db_session.commit()
    done = submit(client, zhang, get(client, zhang, current["id"]).get_json(), consent=False)
    assert done.status_code == 200


def test_a_null_on_an_empty_opened_field_does_not_answer_the_supplement(client, zhang, officer):
    """Merge-patch phones send null for the empty inputs of a section they autosave on opening it."""
    current = _asked(client, zhang, officer, fields=["delivery.method"])
    blanks = current["supplement"]["blank_neighbours"]
    assert blanks, current["supplement"]
    group, _, leaf = blanks[0].rpartition(".")
    assert patch(client, zhang, current, {group: {leaf: None}}).status_code == 200
    current = get(client, zhang, current["id"]).get_json()
    assert current["supplement"]["answered"] is False
    assert submit(client, zhang, current, consent=False).status_code == 422


def test_emptying_a_named_field_that_held_a_value_answers_the_supplement(client, zhang, officer):
    current = _asked(client, zhang, officer, fields=["ss_card_application.outlet"])
    assert patch(client, zhang, current, {"ss_card_application": {"outlet": None}}).status_code == 200
    assert get(client, zhang, current["id"]).get_json()["supplement"]["answered"] is True


def test_typing_a_named_value_again_as_it_was_confirms_it(client, zhang, officer):
    current = _asked(client, zhang, officer, fields=["ss_card_application.outlet"])
    assert patch(client, zhang, current, {"ss_card_application": {"outlet": "天河支行"}}).status_code == 200
    assert (
        submit(client, zhang, get(client, zhang, current["id"]).get_json(), consent=False).status_code == 200
    )
