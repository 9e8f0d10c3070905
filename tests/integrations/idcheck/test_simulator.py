"""The simulator checks the protocol as the real service would: requests crafted by hand."""

from __future__ import annotations

import json
import time
from datetime import date

import httpx
import pytest
from cryptography.hazmat.primitives import hashes

from integrations.idcheck import signing
from integrations.idcheck.simulator import id_number_well_formed
from integrations.realname.people import DEMO_PEOPLE

NAME, ID_NUMBER = DEMO_PEOPLE[0]


@pytest.fixture
def send(idcheck_server, control, sim_config):
    """POST a hand-made request; every part can be overridden or spoiled."""
    secret = sim_config["IDCHECK_APP_SECRET"]

    def post(*, request_id="hand1", payload=None, body=None, headers=None, ts_offset=0, nonce=None,
             secret_for_signature=secret, content_type="application/json", drop=()):  # fmt: skip
        if body is None:
            payload = payload or signing.encrypt_payload(secret, request_id, NAME, ID_NUMBER)
            body = json.dumps({"request_id": request_id, "purpose": "测试", "payload": payload}).encode()
        hdrs = signing.request_headers(
            sim_config["IDCHECK_APP_ID"], secret_for_signature, body,
            timestamp=int(time.time()) + ts_offset, nonce=nonce,
        )  # fmt: skip
        hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        for name in drop:
            hdrs.pop(name)
        return httpx.post(idcheck_server.url + signing.VERIFY_PATH.lstrip("/"), content=body, headers=hdrs)

    return post


def envelope(resp: httpx.Response, sim_config: dict) -> dict:
    """The answer, after checking it is signed with the app secret."""
    assert resp.status_code == 200
    assert signing.response_signature_ok(sim_config["IDCHECK_APP_SECRET"], 200, resp.headers, resp.content)
    return resp.json()


def test_a_correct_request_gets_a_signed_match(send, sim_config):
    body = envelope(send(), sim_config)
    assert (
        body["code"] == 0
        and body["request_id"] == "hand1"
        and body["result"] == {"code": "0", "message": "一致"}
    )
    assert NAME not in json.dumps(body, ensure_ascii=False) and ID_NUMBER not in json.dumps(body)


@pytest.mark.parametrize(
    ("spoil", "code"),
    [({"secret_for_signature": "a-different-secret"}, 1001),
     ({"headers": {"X-Signature": "0" * 64}}, 1001),
     ({"drop": ("X-Signature",)}, 1001),
     ({"ts_offset": -301}, 1002),  # relative to when the test runs, not when it was collected
     ({"ts_offset": 400}, 1002),
     ({"drop": ("X-Timestamp",)}, 1005),
     ({"headers": {"X-Timestamp": "yesterday"}}, 1005),
     ({"nonce": "n" * 15}, 1005),
     ({"drop": ("X-Nonce",)}, 1005),
     ({"content_type": "text/plain"}, 1005),
     ({"body": b"not json"}, 1005),
     ({"body": b'{"request_id": "r", "purpose": "p"}'}, 1005),
     ({"body": b'{"request_id": "r", "purpose": "p", "payload": "AAAA", "name": "x"}'}, 1005),
     ({"body": b'{"request_id": "has space", "purpose": "p", "payload": "AAAA"}'}, 1005),
     ({"body": b'{"request_id": "r", "purpose": "", "payload": "AAAA"}'}, 1005),
     ({"payload": "bm90IGEgcGF5bG9hZA=="}, 1005)],
)  # fmt: skip
def test_badly_made_requests_are_refused_with_signed_errors(send, sim_config, control, spoil, code):
    body = envelope(send(**spoil), sim_config)
    assert body["code"] == code and body["result"] is None
    assert control.calls()["errors"] == {str(code): 1} and control.calls()["ok"] == 0


def test_a_payload_is_bound_to_its_request_id_and_key(send, sim_config):
    secret = sim_config["IDCHECK_APP_SECRET"]
    moved = signing.encrypt_payload(secret, "other-request", NAME, ID_NUMBER)
    assert envelope(send(payload=moved), sim_config)["code"] == 1005
    foreign = signing.encrypt_payload("another-app-secret", "hand1", NAME, ID_NUMBER)
    assert envelope(send(payload=foreign), sim_config)["code"] == 1005


def test_a_payload_must_hold_exactly_name_and_id_number(send, sim_config):
    def sealed(obj: dict) -> str:
        return signing.encrypt_payload(sim_config["IDCHECK_APP_SECRET"], "hand1", **obj)

    assert envelope(send(payload=sealed({"name": "", "id_number": ID_NUMBER})), sim_config)["code"] == 1005
    assert envelope(send(payload=sealed({"name": NAME, "id_number": ""})), sim_config)["code"] == 1005


def test_a_replayed_nonce_is_refused(send, sim_config):
    nonce = signing.new_nonce()
    assert envelope(send(nonce=nonce), sim_config)["code"] == 0
    assert envelope(send(nonce=nonce), sim_config)["code"] == 1003
    assert envelope(send(nonce=nonce, request_id="hand2"), sim_config)["code"] == 1003


def test_an_unknown_app_gets_an_unsigned_refusal(send):
    resp = send(headers={"X-App-Id": "nobody"})
    assert resp.json()["code"] == 1004 and "X-Signature" not in resp.headers


def test_down_answers_503_without_a_signature(send, control):
    control.faults(down=True)
    resp = send()
    assert resp.status_code == 503 and "X-Signature" not in resp.headers
    control.faults(down=False)
    assert send().json()["code"] == 0


def test_only_the_verify_route_exists(idcheck_server):
    assert httpx.get(idcheck_server.url + signing.VERIFY_PATH.lstrip("/")).status_code == 405
    assert httpx.post(idcheck_server.url + "v1/verify/three-factor").status_code == 404


def test_control_api_refuses_unknown_faults_and_bad_people(idcheck_server, control):
    base = idcheck_server.url + "_sim/"
    assert httpx.post(base + "faults", json={"explode": True}).status_code == 400
    assert httpx.post(base + "faults", json={"errors": ["soon"]}).status_code == 400
    assert httpx.post(base + "people", json={"name": "张三"}).status_code == 400
    assert control.faults(latency_ms=0, errors=[5003])["errors"] == [5003]
    assert control.calls() == {
        "total": 0,
        "ok": 0,
        "http_5xx": 0,
        "by_action": {},
        "errors": {},
        "results": {},
    }


@pytest.mark.parametrize(("_name", "id_number"), DEMO_PEOPLE)
def test_demo_people_are_well_formed(_name, id_number):
    assert id_number_well_formed(id_number, date.today())


@pytest.mark.parametrize(
    "id_number",
    [ID_NUMBER[:17] + "4", ID_NUMBER[:17], ID_NUMBER + "1", "010101199003078515", "11010119900307851x",
     "1101011990030785I5", "110101199013078515"],
)  # fmt: skip
def test_malformed_id_numbers_are_recognised(id_number):
    assert not id_number_well_formed(id_number, date.today())


def test_birth_dates_after_the_given_day_are_malformed():
    assert not id_number_well_formed(ID_NUMBER, date(1990, 3, 6))
    assert id_number_well_formed(ID_NUMBER, date(1990, 3, 7))


def test_signing_matches_the_documented_construction():
    """Pinned vectors, and HMAC-SM3 rebuilt from plain SM3 (RFC 2104) as a cross-check."""
    canonical = signing.canonical_request("POST", signing.VERIFY_PATH, "1700000000", "n" * 16, b"{}")
    assert canonical == (
        "POST\n/v1/verify/two-factor\n1700000000\nnnnnnnnnnnnnnnnn\n"
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )

    def sm3(data: bytes) -> bytes:
        digest = hashes.Hash(hashes.SM3())
        digest.update(data)
        return digest.finalize()

    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    key = b"secret".ljust(64, b"\0")
    inner = sm3(bytes(k ^ 0x36 for k in key) + canonical.encode())
    manual = sm3(bytes(k ^ 0x5C for k in key) + inner).hex()
    assert signing.hmac_sm3_hex("secret", canonical) == manual
    assert manual == "4eafd7f7496f934547ff486eff6b14e4888e095454047ce0577c3fb8f6e1ba01"
    assert signing.payload_key("secret").hex() == "45ef4ad635c623bd9a0cb1e49e615c55"
