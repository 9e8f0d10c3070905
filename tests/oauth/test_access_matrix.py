"""Who sees what: a client reaches only its consenting citizen's data, within its scopes; first-
and third-party tokens see exactly what they should; every third-party access is on the ledger."""

from __future__ import annotations

import re

import pytest

from tests.api.v1.applications.conftest import SS_CARD, jpeg, key, verified
from tests.oauth.conftest import basic, register

READ_WRITE = "applications.read applications.write"


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(app, client, seeded, bank, tokens_for):
    zhang, li = verified(app, 0), verified(app, 1)
    drafts = {}
    for who in (zhang, li):
        resp = client.post("/v1/applications", json={"service_code": SS_CARD}, headers=who["headers"])
        assert resp.status_code == 201, resp.get_json()
        drafts[who["account_id"]] = resp.get_json()["id"]
    other = register(app, name="街道办小程序", scopes=["applications.read", "profile.basic"])
    _, bank_zhang = tokens_for(bank, scope=READ_WRITE, citizen=zhang, sensitive=["applications.write"])
    _, other_li = tokens_for(other, scope="applications.read", citizen=li)
    return {
        "zhang": zhang,
        "li": li,
        "drafts": drafts,
        "bank": bank,
        "other": other,
        "bank_zhang": _auth(bank_zhang["access_token"]),
        "other_li": _auth(other_li["access_token"]),
    }


def test_a_client_sees_only_its_consenting_citizens_applications(client, world):
    z, li = world["zhang"]["account_id"], world["li"]["account_id"]
    listed = client.get("/v1/applications", headers=world["bank_zhang"]).get_json()
    assert [a["id"] for a in listed["items"]] == [world["drafts"][z]]
    assert (
        client.get(f"/v1/applications/{world['drafts'][z]}", headers=world["bank_zhang"]).status_code == 200
    )
    for method in ("get", "delete"):
        resp = getattr(client, method)(f"/v1/applications/{world['drafts'][li]}", headers=world["bank_zhang"])
        assert resp.status_code == 404, (method, resp.get_json())
    other = client.get(f"/v1/applications/{world['drafts'][z]}", headers=world["other_li"])
    assert other.status_code == 404
    own = client.get(f"/v1/applications/{world['drafts'][li]}", headers=world["other_li"])
    assert own.status_code == 200


def test_write_scope_acts_for_the_citizen_and_read_scope_cannot(client, world):
    made = client.post("/v1/applications", json={"service_code": SS_CARD}, headers=world["bank_zhang"])
    assert made.status_code == 201, made.get_json()
    mine = client.get(f"/v1/applications/{made.get_json()['id']}", headers=world["zhang"]["headers"])
    assert mine.status_code == 200  # the citizen sees what the app did in their name
    refused = client.post("/v1/applications", json={"service_code": SS_CARD}, headers=world["other_li"])
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "oauth.insufficient_scope"


def test_read_access_alone_sees_the_case_and_its_progress_not_the_form(client, world):
    """applications.read was consented to as "您在本平台办理的事项、进度和结果": no form content,
    no file or certificate of a material; the citizen and an app filling in for them see it all."""
    li = world["li"]
    draft = world["drafts"][li["account_id"]]
    current = client.get(f"/v1/applications/{draft}", headers=li["headers"]).get_json()
    form = {
        "ss_card_application": {"bank": "icbc"},
        "delivery": {"method": "post", "address": "广州市越秀区东风中路5号"},
    }
    saved = client.patch(
        f"/v1/applications/{draft}",
        json={"data": form},
        headers=li["headers"] | {"If-Match": f'"r{current["revision"]}"'},
    )
    assert saved.status_code == 200, saved.get_json()
    up = client.post(
        f"/v1/applications/{draft}/materials/id_card/files",
        data=jpeg(),
        headers=li["headers"] | {"Content-Type": "image/jpeg"},
    )
    assert up.status_code == 201, up.get_json()
    own = client.get(f"/v1/applications/{draft}", headers=li["headers"])
    assert own.get_json()["data"]["delivery"]["address"] == "广州市越秀区东风中路5号"

    seen = client.get(f"/v1/applications/{draft}", headers=world["other_li"])
    assert seen.status_code == 200 and own.headers["ETag"] == f'"r{own.get_json()["revision"]}"'
    view = seen.get_json()
    assert "data" not in view and "provenance" not in view
    assert (view["status"], view["service_name"]) == (
        own.get_json()["status"],
        own.get_json()["service_name"],
    )
    text = seen.get_data(as_text=True)
    # Ids and times are random digits: four of them may match the ID number's last four by chance.
    digits_of_person = re.sub(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|\d{4}-\d\d-\d\dT[\d:.+]+", "", text)
    assert "东风中路" not in text and li["name"] not in text
    assert li["id_number"][-4:] not in digits_of_person
    if up.status_code == 201:
        card = next(m for m in view["materials"] if m["id"] == "id_card")
        assert card["satisfied"] is True and [set(b) for b in card["satisfied_by"]] == [
            {"kind", "attached_at"}
        ]
        assert up.get_json()["id"] not in text
    reusable = client.get(f"/v1/applications/{draft}/materials/id_card/files", headers=world["other_li"])
    assert reusable.status_code == 403

    z = world["zhang"]
    filling = client.get(f"/v1/applications/{world['drafts'][z['account_id']]}", headers=world["bank_zhang"])
    assert "data" in filling.get_json() and "provenance" in filling.get_json()


def test_read_access_alone_gets_no_etag_to_base_a_write_on(client, world):
    """The ETag of an application is its revision, sent back in If-Match on an autosave: the
    citizen and an app that may write get it; an app with applications.read alone makes no write
    and gets none (compressed or not), while its reads still succeed."""
    li, z = world["li"], world["zhang"]
    li_draft, z_draft = world["drafts"][li["account_id"]], world["drafts"][z["account_id"]]
    for encoding in ("identity", "gzip"):
        seen = client.get(
            f"/v1/applications/{li_draft}", headers=world["other_li"] | {"Accept-Encoding": encoding}
        )
        assert seen.status_code == 200 and "ETag" not in seen.headers, (encoding, dict(seen.headers))
        assert seen.headers["Cache-Control"] == "no-store"
    own = client.get(f"/v1/applications/{li_draft}", headers=li["headers"])
    assert own.headers["ETag"] == f'"r{own.get_json()["revision"]}"'
    writer = client.get(f"/v1/applications/{z_draft}", headers=world["bank_zhang"])
    assert writer.headers["ETag"] == f'"r{writer.get_json()["revision"]}"'
    saved = client.patch(
        f"/v1/applications/{z_draft}",
        json={"data": {"ss_card_application": {"bank": "icbc"}}},
        headers=world["bank_zhang"] | {"If-Match": writer.headers["ETag"]},
    )
    assert saved.status_code == 200, saved.get_json()
    assert saved.headers["ETag"] == f'"r{writer.get_json()["revision"] + 1}"'
    refused = client.patch(
        f"/v1/applications/{li_draft}",
        json={"data": {"ss_card_application": {"bank": "icbc"}}},
        headers=world["other_li"] | {"If-Match": own.headers["ETag"]},
    )
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "oauth.insufficient_scope"


def test_read_access_alone_does_not_see_what_the_citizen_wrote_on_the_timeline(client, world):
    from tests.api.v1.applications.conftest import submit
    from tests.api.v1.applications.test_bad_input import _ready

    li = world["li"]
    case = _ready(client, li)
    assert submit(client, li, case).status_code == 200
    reason = "不想办了，有事请打13800001111"
    withdrawn = client.post(
        f"/v1/applications/{case['id']}/withdraw", json={"reason": reason}, headers=li["headers"] | key()
    )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    url = f"/v1/applications/{case['id']}/timeline"
    own = client.get(url, headers=li["headers"]).get_json()["events"]
    assert own[-1]["status"] == "withdrawn" and own[-1]["note"] == reason
    seen = client.get(url, headers=world["other_li"])
    assert seen.status_code == 200
    assert [e["status"] for e in seen.get_json()["events"]] == [e["status"] for e in own]
    assert seen.get_json()["events"][-1]["note"] is None and "13800001111" not in seen.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/me"),
        ("get", "/v1/me/phone"),
        ("get", "/v1/me/sessions"),
        ("get", "/v1/me/grants"),
        ("get", "/v1/me/data-access"),
        ("get", "/v1/identity"),
        ("get", "/v1/certificates"),
        ("get", "/v1/notifications"),
        ("get", "/v1/appointments"),
        ("get", "/v1/devices"),
        ("post", "/v1/applications/{draft}/data-sharing"),
        ("get", "/v1/me/basic-profile"),
    ],
)
def test_endpoints_outside_the_granted_scopes_refuse_third_party_tokens(client, world, method, path):
    path = path.format(draft=world["drafts"][world["zhang"]["account_id"]])
    resp = getattr(client, method)(path, headers=world["bank_zhang"], json={} if method == "post" else None)
    assert resp.status_code == 403, (path, resp.status_code)
    assert resp.get_json()["error"]["code"] in ("oauth.endpoint_not_allowed", "oauth.insufficient_scope")
    first_party = getattr(client, method)(
        path, headers=world["zhang"]["headers"], json={} if method == "post" else None
    )
    assert first_party.status_code != 403 or path.endswith("data-sharing"), path


def test_an_app_token_alone_reaches_no_citizen(app, client, world):
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(world["bank"])
    )
    assert client.get("/v1/applications", headers=_auth(token.get_json()["access_token"])).status_code == 401


def test_every_third_party_access_is_on_that_citizens_ledger_and_no_one_elses(client, world):
    z = world["zhang"]
    draft = world["drafts"][z["account_id"]]
    client.get("/v1/applications", headers=world["bank_zhang"])
    client.get(f"/v1/applications/{draft}", headers=world["bank_zhang"])
    client.get(
        f"/v1/applications/{world['drafts'][world['li']['account_id']]}", headers=world["bank_zhang"]
    )  # 404
    ledger = client.get("/v1/me/data-access", headers=z["headers"]).get_json()["items"]
    apps = [e for e in ledger if e["accessor"]["type"] == "client"]
    assert [(e["resource"], e["scope"]) for e in apps] == [
        (f"GET /v1/applications/{draft}", "applications.read"),
        ("GET /v1/applications", "applications.read"),
    ]
    assert apps[0]["accessor"] == {"type": "client", "id": world["bank"]["id"], "name": "便民银行"}
    assert apps[0]["application_id"] == draft and apps[0]["resource_name"] == "查看办件"
    li_ledger = client.get("/v1/me/data-access", headers=world["li"]["headers"]).get_json()["items"]
    assert all(e["accessor"]["id"] != world["bank"]["id"] for e in li_ledger)


def test_third_party_access_pauses_while_the_ledger_cannot_keep_up(app, client, world, monkeypatch, tmp_path):
    from core.db import db
    from core.spool import Spool
    from domain.ledger.models import DataAccess

    full = Spool(DataAccess.__table__, db.autocommit, tmp_path, interval=0, max_pending=0)
    monkeypatch.setattr(app.extensions["yiwang"], "ledger_lines", full)
    resp = client.get("/v1/applications", headers={**world["bank_zhang"], "Accept-Language": "en"})
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert resp.get_json()["error"]["code"] == "oauth.ledger_unavailable" and "items" not in resp.get_json()
    assert client.get("/v1/applications", headers=world["zhang"]["headers"]).status_code == 200


def test_an_app_never_gets_an_answer_given_to_the_citizens_own_app(client, world):
    """Idempotency-Keys are the citizen's apps' and each third-party app's own: an app that
    guessed a key (and the body) would otherwise be answered with what the citizen was."""
    zhang, body = world["zhang"], {"service_code": SS_CARD}
    key = {"Idempotency-Key": "same-key-1"}
    own = client.post("/v1/applications", json=body, headers=zhang["headers"] | key)
    assert own.status_code == 201
    again = client.post("/v1/applications", json=body, headers=zhang["headers"] | key)
    assert again.headers.get("Idempotent-Replayed") == "true"  # the citizen's own retry replays
    by_app = client.post("/v1/applications", json=body, headers=world["bank_zhang"] | key)
    assert by_app.status_code == 201 and by_app.headers.get("Idempotent-Replayed") is None
    assert by_app.get_json()["id"] != own.get_json()["id"]  # its own draft, not the citizen's answer
