"""What a province's refusal quotes is kept masked only where it can be personal: the applicant's
name and what the citizen wrote; the form's listed choices stay readable for operators."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from domain.applications.models import ForwardingOutbox
from domain.catalog.importing import import_catalog
from domain.operators.audit_log import Actor
from integrations.province.client import ProvinceError
from tests.api.v1.applications.conftest import create, jpeg, patch, submit, upload
from tests.domain.catalog.factories import document, item
from tests.forwarding.conftest import forward, fresh

ADDRESS = "广州市天河区体育西路191号"


def _household_item() -> dict:
    """An item whose form lists its choices in Chinese (户籍类别, 婚姻状况 as oneOf, 民族 inside
    a list of family members) beside what the citizen writes (住址, members' names)."""
    doc = item("000105099000", "居住证申领")
    schema = copy.deepcopy(doc["form"]["schema"])
    schema["$defs"] = {"ethnicity": {"type": "string", "enum": ["汉族", "壮族", "回族"]}}
    schema["properties"]["household"] = {
        "type": "object",
        "properties": {
            "registration": {"type": "string", "enum": ["本市户籍", "非本市户籍"], "x-readable": True},
            "marital": {"oneOf": [{"const": "已婚", "title": "已婚"}, {"const": "未婚", "title": "未婚"}]},
            "address": {"type": "string", "minLength": 5, "maxLength": 200},
            "members": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "ethnicity": {"$ref": "#/$defs/ethnicity"}},
                },
            },
        },
        "required": ["registration", "marital", "address"],
    }
    schema["required"] = ["applicant", "household"]
    doc["form"]["schema"] = schema
    doc["materials"] = [m for m in doc["materials"] if m["id"] == "photo"]
    return doc


HOUSEHOLD = _household_item()


@pytest.fixture
def published(db_session):
    report = import_catalog(
        db_session, Actor(type="operator", id="op-1"), document(HOUSEHOLD, publish=True), dry_run=False
    )
    assert report.ok, report.problems


def test_a_refusal_shows_the_forms_listed_choices_and_masks_the_name_and_the_address(
    client, zhang, services, monkeypatch, published
):
    draft = create(client, zhang, service_code=HOUSEHOLD["code"])
    assert draft.status_code == 201, draft.get_json()
    household = {
        "registration": "本市户籍", "marital": "已婚", "address": ADDRESS,
        "members": [{"name": "李小四", "ethnicity": "汉族"}],
    }  # fmt: skip
    saved = patch(client, zhang, draft.get_json(), {"reason": {"kind": "expired"}, "household": household})
    assert saved.status_code == 200, saved.get_json()
    assert upload(client, zhang, saved.get_json()["id"], "photo", jpeg()).status_code == 201
    case = submit(client, zhang, saved.get_json())
    assert case.status_code == 200, case.get_json()
    fw = services.forwarding.forwarder()
    sent: dict = {}

    def refuse(body):
        sent.update(body)
        form = body["form"]
        member = form["household.members"][0]
        raise ProvinceError(
            f"申请人{body['applicant']['name']}（{form['household.marital']}，家庭成员{member['name']}"
            f"{member['ethnicity']}）住址“{form['household.address']}”与登记不符，"
            f"请补充{form['household.registration']}证明",
            retryable=False, status=400, code="E4001",
        )  # fmt: skip

    monkeypatch.setattr(fw.client, "intake", refuse)  # the client is shared: undone after the test
    assert forward(services, forwarder=fw) == ["dead"]
    assert sent["applicant"]["name"] == zhang["name"] and sent["form"]["household.address"] == ADDRESS
    row = fresh().scalar(
        select(ForwardingOutbox).where(ForwardingOutbox.application_id == case.get_json()["id"])
    )
    audited = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "forwarding.dead_letter")).all()
    for text in (row.last_error, *(str(a.details) for a in audited)):
        # The operator reads what was refused: the choice the catalog marked readable.
        assert "请补充本市户籍证明" in text, text
        # Listed choices that are sensitive personal information stay masked (not marked).
        assert "已婚" not in text and "（已*，" in text and "汉族" not in text, text
        # What can be personal stays masked: the name, the address, a family member's name.
        assert zhang["name"] not in text and ADDRESS not in text and "李小四" not in text, text
        assert "申请人张*（" in text and "住址“广************号”" in text and "李*四" in text, text


def test_values_of_fields_the_spec_does_not_know_are_masked_as_written_by_the_citizen():
    from core.masking import redact_values
    from domain.forwarding.delivery import FormFields, _quoted

    body = {"applicant": {"name": "张三"}, "form": {"kind": "本市户籍", "extra": "非本市户籍"}}
    fields = FormFields({"kind": {"enum": ["本市户籍", "非本市户籍"], "x-readable": True}}, {})
    text = redact_values("类别本市户籍；补充非本市户籍", _quoted(body, fields))
    assert text == "类别本市户籍；补充非***籍"
    # A listed choice the catalog did not mark readable is masked like written text.
    unmarked = FormFields({"kind": {"enum": ["本市户籍", "非本市户籍"]}}, {})
    assert "本市户籍" not in redact_values("类别本市户籍", _quoted(body, unmarked))
    # Without the form's spec every value written in Chinese is masked, as before.
    assert "本市户籍" not in redact_values("类别本市户籍", _quoted(body))


def test_a_refused_withdrawal_keeps_neither_the_applicants_name_nor_the_reason(
    app, client, zhang, services, province, monkeypatch, caplog
):
    """A withdrawal's body carries no applicant and no form, but the province's refusal may quote
    the applicant ("申请人张三的办件已受理") and the citizen's reason."""
    from tests.api.v1.applications.conftest import key
    from tests.forwarding.conftest import submitted

    case = submitted(client, zhang)
    assert forward(services) == ["delivered"]
    reason = "家中有事，暂不办理"
    done = client.post(
        f"/v1/applications/{case['id']}/withdraw", json={"reason": reason}, headers=zhang["headers"] | key()
    )
    assert done.status_code == 200, done.get_json()
    fw = services.forwarding.forwarder()

    def refuse(body):
        assert body["action"] == "withdraw"
        raise ProvinceError(
            f"申请人{zhang['name']}的办件已受理，不能撤回（{reason}）",
            retryable=False,
            status=400,
            code="E4003",
        )

    monkeypatch.setattr(fw.client, "intake", refuse)
    assert forward(services, forwarder=fw) == ["dead"]
    row = fresh().scalar(
        select(ForwardingOutbox).where(
            ForwardingOutbox.application_id == case["id"], ForwardingOutbox.kind == "withdraw"
        )
    )
    audited = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "forwarding.dead_letter")).all()
    logged = [r.getMessage() + str(r.__dict__) for r in caplog.records]
    assert "不能撤回" in row.last_error  # the province's words stay readable
    for text in (row.last_error, *(str(a.details) for a in audited), *logged):
        assert zhang["name"] not in text and reason not in text, text
