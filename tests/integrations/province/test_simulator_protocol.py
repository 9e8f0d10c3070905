"""The province simulator checks the protocol as the real platform would, and its faults are real."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from config import TestConfig as _TestConfig
from integrations.province import gm, signing
from integrations.province.simulator import INTAKE_PATH, STATUS_PATH, create_simulator
from integrations.simulator_server import ThreadedSimulator

CFG = vars(_TestConfig()) | {
    "PROVINCE_SIM_SCHEDULE": "off",
    "PROVINCE_SIM_CALLBACK_URL": "http://127.0.0.1:9/",
}
YIWANG = signing.Credentials(
    alg=signing.ALG_HMAC, app_id=CFG["PROVINCE_APP_ID"], secret=CFG["PROVINCE_SECRET"]
)
KEY = gm.sm4_key(CFG["PROVINCE_SM4_KEY"])
ID_NUMBER = "110101199003078515"


def _body(sblsh: str = "C1", action: str = "submit", version: int = 1, **over) -> dict:
    body = {
        "sblsh": sblsh, "version": version, "action": action, "item_code": "X" * 31, "channel": "1",
        "applicant": {
            "name": gm.sm4_encrypt_field(KEY, "张三"), "id_number": gm.sm4_encrypt_field(KEY, ID_NUMBER),
        },
    }  # fmt: skip
    return body | over


def _post(client, path: str, body: dict, *, creds=YIWANG, **sign):
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = signing.sign_request(creds, "POST", path, raw, **sign) | {"Content-Type": "application/json"}
    return client.post(path, data=raw, headers=headers)


@pytest.fixture
def sim():
    app = create_simulator(CFG)
    return app, app.test_client()


def test_a_signed_submission_gets_a_signed_receipt_and_a_repeat_the_same_one(sim):
    app, client = sim
    first = _post(client, INTAKE_PATH, _body())
    assert first.status_code == 200
    signing.verify_response(YIWANG, 200, first.headers, first.data, now=time.time())
    again = _post(client, INTAKE_PATH, _body())
    assert again.get_json()["receipt_no"] == first.get_json()["receipt_no"] and again.get_json()["duplicate"]
    stats = client.get("/_sim/stats").get_json()
    assert stats["received"] == 1 and stats["duplicates"] == 1 and stats["cases"] == 1
    case = client.get("/_sim/cases/C1").get_json()
    assert case["applicant"]["decrypted"] and ID_NUMBER not in json.dumps(case)
    assert [e["stage"] for e in case["events"]] == ["received"]


def test_authentication_failures_are_401_with_the_reason(sim):
    _, client = sim
    wrong = signing.Credentials(alg=signing.ALG_HMAC, app_id=YIWANG.app_id, secret="not-the-secret")
    assert _post(client, INTAKE_PATH, _body(), creds=wrong).status_code == 401
    assert _post(client, INTAKE_PATH, _body(), now=time.time() - 900).status_code == 401
    raw = json.dumps(_body()).encode()
    headers = signing.sign_request(YIWANG, "POST", INTAKE_PATH, raw) | {"Content-Type": "application/json"}
    assert client.post(INTAKE_PATH, data=raw, headers=headers).status_code == 200
    assert client.post(INTAKE_PATH, data=raw, headers=headers).status_code == 401  # the same nonce
    failures = client.get("/_sim/stats").get_json()["auth_failures"]
    assert failures == {"bad_signature": 1, "stale_timestamp": 1, "replayed_nonce": 1}


def test_validation_and_decryption_failures_are_permanent_4xx(sim):
    _, client = sim
    bad_id = _body(
        applicant={
            "name": gm.sm4_encrypt_field(KEY, "张三"),
            "id_number": gm.sm4_encrypt_field(KEY, "110101199003078516"),
        }
    )
    assert _post(client, INTAKE_PATH, bad_id).get_json()["code"] == "E4001"
    junk = _body(applicant={"name": "not-base64!", "id_number": gm.sm4_encrypt_field(KEY, ID_NUMBER)})
    resp = _post(client, INTAKE_PATH, junk)
    assert resp.status_code == 400 and resp.get_json()["code"] == "E4002"
    assert _post(client, INTAKE_PATH, _body(channel=3)).status_code == 400
    unnamed = _post(client, INTAKE_PATH, _body(materials=[{"material_id": "m1", "kind": "upload"}]))
    assert unnamed.status_code == 400 and "材料名称" in unnamed.get_json()["message"]
    odd_kind = _body(materials=[{"material_id": "m1", "kind": "fax", "name": "身份证"}])
    assert _post(client, INTAKE_PATH, odd_kind).get_json()["code"] == "E4001"
    assert _post(client, INTAKE_PATH, _body("NEW", action="withdraw")).status_code == 404
    assert _post(client, STATUS_PATH, {"sblsh": "NEW"}).status_code == 404


@pytest.mark.parametrize(
    "id_number",
    [
        ID_NUMBER[:17].translate({c: c + 0xFEE0 for c in range(0x30, 0x3A)}) + ID_NUMBER[17],  # full-width
        "1101011990030785\u00b3X",  # a superscript three: int() refuses it
        "\u0661" + ID_NUMBER[1:],  # an Arabic-Indic one
    ],
)
def test_an_id_number_with_non_ascii_digits_is_refused(sim, id_number):
    _, client = sim
    body = _body(
        applicant={
            "name": gm.sm4_encrypt_field(KEY, "张三"),
            "id_number": gm.sm4_encrypt_field(KEY, id_number),
        }
    )
    resp = _post(client, INTAKE_PATH, body)
    assert (resp.status_code, resp.get_json()["code"]) == (400, "E4001")
    assert "身份证号码" in resp.get_json()["message"]


def test_stage_moves_follow_the_case_and_status_lists_them(sim):
    _, client = sim
    _post(client, INTAKE_PATH, _body())
    assert client.post("/_sim/cases/C1/complete", json={"result": "approved"}).status_code == 409
    assert (
        client.post("/_sim/cases/C1/supplement", json={"materials": ["m1"], "reason": "不清晰"}).status_code
        == 200
    )
    _post(client, INTAKE_PATH, _body(action="resubmit", version=2))
    assert client.post("/_sim/cases/C1/accept").status_code == 200
    assert client.post("/_sim/cases/C1/complete", json={"result": "denied"}).status_code == 200
    events = _post(client, STATUS_PATH, {"sblsh": "C1"}).get_json()["events"]
    assert [(e["seq"], e["stage"]) for e in events] == [
        (1, "received"), (2, "supplement"), (3, "received"), (4, "accepted"), (5, "completed"),
    ]  # fmt: skip
    assert events[1]["code"] == "3" and events[1]["materials"] == ["m1"] and events[4]["result_code"] == "7"


def test_a_supplement_during_review_goes_back_to_review_and_acceptance_happens_once(sim):
    app, client = sim
    _post(client, INTAKE_PATH, _body())
    for stage in ("accept", "review"):
        assert client.post(f"/_sim/cases/C1/{stage}").status_code == 200, stage
    assert (
        client.post("/_sim/cases/C1/supplement", json={"fields": ["a.b"], "reason": "补充"}).status_code
        == 200
    )
    _post(client, INTAKE_PATH, _body(action="resubmit", version=2))
    assert client.post("/_sim/cases/C1/accept").status_code == 409
    assert client.post("/_sim/cases/C1/refuse", json={"reason": "x"}).status_code == 409
    # The configured schedule says "accepted" after each receipt: for this case, review goes on.
    mover = app.extensions["province_sim"]
    mover.scheduled_move("C1", "accepted")
    mover.scheduled_move("C1", "completed")
    events = _post(client, STATUS_PATH, {"sblsh": "C1"}).get_json()["events"]
    assert [e["stage"] for e in events] == [
        "received",
        "accepted",
        "in_review",
        "supplement",
        "received",
        "in_review",
        "completed",
    ]


def test_faults_503_429_outage(sim):
    _, client = sim
    client.post("/_sim/faults", json={"error_rate": 1.0})
    assert _post(client, INTAKE_PATH, _body()).status_code == 503
    client.post("/_sim/faults", json={"error_rate": 0.0, "outage": True})
    assert _post(client, INTAKE_PATH, _body()).status_code == 503
    client.post("/_sim/faults", json={"outage": False, "rate_limit": 0.001})
    limited = _post(client, INTAKE_PATH, _body())
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert client.post("/_sim/faults", json={"no_such_fault": 1}).status_code == 400
    assert client.get("/_sim/stats").get_json()["received"] == 0


def test_resets_and_timeouts_happen_on_the_wire():
    server = ThreadedSimulator(create_simulator(CFG)).start()
    try:
        http = httpx.Client(timeout=0.5)
        raw = json.dumps(_body()).encode()
        http.post(f"{server.url}_sim/faults", json={"reset_rate": 1.0})
        with pytest.raises(httpx.TransportError):
            http.post(
                server.url.rstrip("/") + INTAKE_PATH,
                content=raw,
                headers=signing.sign_request(YIWANG, "POST", INTAKE_PATH, raw),
            )
        http.post(
            f"{server.url}_sim/faults",
            json={"reset_rate": 0, "timeout_rate": 1.0, "timeout_seconds": 1.0, "timeout_record": "before"},
        )
        with pytest.raises(httpx.TimeoutException):
            http.post(
                server.url.rstrip("/") + INTAKE_PATH,
                content=raw,
                headers=signing.sign_request(YIWANG, "POST", INTAKE_PATH, raw),
            )
        time.sleep(0.6)
        stats = http.get(f"{server.url}_sim/stats").json()
        assert (
            stats["resets"] == 1 and stats["timeouts"] == 1 and stats["received"] == 1
        )  # late, but recorded
    finally:
        server.stop()


def test_callbacks_are_signed_retried_until_accepted_and_can_come_twice():
    from flask import Flask, request

    seen: list[dict] = []
    answers = iter([503, 200, 200, 200, 200])
    receiver = Flask("receiver")

    @receiver.post("/cb")
    def cb():
        province = signing.Credentials(alg=signing.ALG_HMAC, app_id=YIWANG.app_id, secret=YIWANG.secret)
        signing.verify_request(province, "POST", "/cb", request.headers, request.get_data(), now=time.time(),
                               nonce_seen=lambda n, t: False)  # fmt: skip
        status = next(answers)
        if status == 200:
            seen.append(request.get_json())
        return "", status, signing.sign_response(province, status, b"")  # answers are signed too

    target = ThreadedSimulator(receiver).start()
    server = ThreadedSimulator(create_simulator(CFG)).start()
    try:
        http = httpx.Client(timeout=5)
        http.post(f"{server.url}_sim/callback_url", json={"url": f"{target.url}cb"})
        http.post(f"{server.url}_sim/faults", json={"duplicate_callbacks": 1.0})
        raw = json.dumps(_body()).encode()
        http.post(
            server.url.rstrip("/") + INTAKE_PATH,
            content=raw,
            headers=signing.sign_request(YIWANG, "POST", INTAKE_PATH, raw),
        )
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e["seq"] for e in seen] == [1, 1] and seen[0]["stage"] == "received"
        # The simulator counts a delivery once it has read the 200, a moment after the receiver
        # saw the event: wait for its count rather than read it at once (a busy machine shows it).
        callbacks = http.get(f"{server.url}_sim/stats").json()["callbacks"]
        while callbacks["delivered"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            callbacks = http.get(f"{server.url}_sim/stats").json()["callbacks"]
        assert callbacks["retried"] >= 1 and callbacks["delivered"] == 2
    finally:
        server.stop()
        target.stop()


def test_an_unsigned_answer_to_a_callback_is_not_taken_for_an_acknowledgement():
    """A 200 anyone in between could have written: the simulator posts the event again, as a
    province that verifies answers would."""
    from flask import Flask

    receiver = Flask("receiver")
    calls: list[int] = []

    @receiver.post("/cb")
    def cb():
        calls.append(1)
        return "", 200  # not signed

    target = ThreadedSimulator(receiver).start()
    server = ThreadedSimulator(create_simulator(CFG)).start()
    try:
        http = httpx.Client(timeout=5)
        http.post(f"{server.url}_sim/callback_url", json={"url": f"{target.url}cb"})
        raw = json.dumps(_body()).encode()
        http.post(
            server.url.rstrip("/") + INTAKE_PATH,
            content=raw,
            headers=signing.sign_request(YIWANG, "POST", INTAKE_PATH, raw),
        )
        deadline = time.monotonic() + 5
        callbacks: dict = {}
        while time.monotonic() < deadline:
            callbacks = http.get(f"{server.url}_sim/stats").json()["callbacks"]
            if callbacks.get("answered_unsigned", 0) >= 1 and callbacks.get("retried", 0) >= 1:
                break
            time.sleep(0.05)
        assert callbacks.get("answered_unsigned", 0) >= 1 and callbacks.get("delivered", 0) == 0, callbacks
    finally:
        server.stop()
        target.stop()
