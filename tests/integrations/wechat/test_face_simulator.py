"""The face verification 2.0 endpoints check what WeChat checks (raw HTTP, no client)."""

import base64
import hashlib
import time

import pytest
import requests

from config import load_config
from integrations.realname.people import DEMO_PEOPLE

CFG = load_config("test")
APPID, SECRET = CFG.WECHAT_APPID, CFG.WECHAT_SECRET
GET_VERIFY_ID = "cityservice/face/identify/getverifyid"
QUERY = "cityservice/face/identify/queryverifyinfo"
NAME, ID_NUMBER = DEMO_PEOPLE[0]


def _hash(cert_name, cert_no, cert_type="IDENTITY_CARD"):
    """The documented rule, written out independently of both client and simulator."""
    enc = [base64.b64encode(v.encode()).decode() for v in (cert_type, cert_name, cert_no)]
    return hashlib.sha256(f"cert_type={enc[0]}&cert_name={enc[1]}&cert_no={enc[2]}".encode()).hexdigest()


def test_documented_cert_hash_example():
    # The worked example of WeChat's documentation (张三, 310101199801011234).
    assert _hash("张三", "310101199801011234") == (
        "3c241f7ff324977aeb91f173bb2a7b06569e6fd784d5573db34a636d8671108b"
    )


class Sim:
    """Raw calls with a fresh access token and one user of the mini-program."""

    def __init__(self, sim, wx):
        self.url, self.wx = sim.url, wx
        body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
        answer = requests.post(sim.url + "cgi-bin/stable_token", json=body, timeout=5).json()
        self.token = answer["access_token"]
        self.openid = wx.add_user()["openid"]

    def post(self, path, body, token=None):
        token = self.token if token is None else token
        return requests.post(self.url + path, params={"access_token": token}, json=body, timeout=5).json()

    def start(self, out_seq_no="order_0001", name=NAME, id_number=ID_NUMBER, token=None, **over):
        cert = {"cert_type": "IDENTITY_CARD", "cert_name": name, "cert_no": id_number}
        body = {"out_seq_no": out_seq_no, "cert_info": cert, "openid": self.openid}
        return self.post(GET_VERIFY_ID, body | over, token=token)

    def query(self, verify_id, out_seq_no="order_0001", name=NAME, id_number=ID_NUMBER, **over):
        body = {"verify_id": verify_id, "out_seq_no": out_seq_no, "cert_hash": _hash(name, id_number),
                "openid": self.openid}  # fmt: skip
        return self.post(QUERY, body | over)


@pytest.fixture
def sim(wechat_sim, wx):
    return Sim(wechat_sim, wx)


def test_getverifyid_returns_a_verify_id_for_an_hour(sim):
    started = sim.start()
    assert started["errcode"] == 0 and started["expires_in"] == 3600
    assert 0 < len(started["verify_id"]) <= 256
    assert sim.query(started["verify_id"]) == {"errcode": 0, "errmsg": "ok", "verify_ret": 0}  # pending


def test_face_endpoints_require_a_valid_access_token(sim):
    assert sim.start(token="")["errcode"] == 41001
    assert sim.start(token="not-a-token")["errcode"] == 40001
    verify_id = sim.start()["verify_id"]
    assert sim.wx.expire_access_token() == 1
    assert sim.query(verify_id)["errcode"] == 42001


def test_getverifyid_checks_its_parameters(sim, wx):
    assert sim.start(openid="oNOTaUSERofTHISapp000000000")["errcode"] == 40003
    wx.add_app("wxotherapp0000000001", "othersecret")
    foreign = wx.add_user(appid="wxotherapp0000000001")["openid"]
    assert sim.start(openid=foreign)["errcode"] == 40003
    assert sim.start(out_seq_no="abc")["errcode"] == 40097  # under 5 characters
    assert sim.start(out_seq_no="order/0001")["errcode"] == 40097
    assert sim.start(out_seq_no="x" * 33)["errcode"] == 40097
    cert = {"cert_type": "PASSPORT", "cert_name": NAME, "cert_no": ID_NUMBER}
    assert sim.start(cert_info=cert)["errcode"] == 40097
    assert sim.start(cert_info={"cert_type": "IDENTITY_CARD", "cert_name": NAME})["errcode"] == 47001
    no_cert = sim.post(GET_VERIFY_ID, {"out_seq_no": "order_0002", "openid": sim.openid})
    assert no_cert["errcode"] == 47001
    params = {"access_token": sim.token}
    bad_json = requests.post(sim.url + GET_VERIFY_ID, params=params, data=b"{", timeout=5)
    assert bad_json.json()["errcode"] == 47001
    as_get = requests.get(sim.url + GET_VERIFY_ID, params={"access_token": sim.token}, timeout=5).json()
    assert as_get["errcode"] == 43002


def test_out_seq_no_is_unique_per_app(sim):
    assert sim.start()["errcode"] == 0
    assert sim.start()["errcode"] == 40097


def test_wrong_cert_hash_is_refused_with_an_errcode_not_a_verify_ret(sim):
    verify_id = sim.start()["verify_id"]
    sim.wx.face_perform(verify_id, "pass")
    assert sim.query(verify_id, name="李四")["errcode"] == 40097  # someone else's cert
    assert sim.query(verify_id, cert_hash="0" * 64)["errcode"] == 40097
    assert sim.query(verify_id, cert_hash=_hash(NAME, ID_NUMBER).upper())["errcode"] == 40097
    # Common mistakes: URL-safe base64, or hashing the raw values.
    raw = hashlib.sha256(f"cert_type=IDENTITY_CARD&cert_name={NAME}&cert_no={ID_NUMBER}".encode()).hexdigest()
    assert sim.query(verify_id, cert_hash=raw)["errcode"] == 40097
    assert "verify_ret" not in sim.query(verify_id, cert_hash=raw)
    assert sim.query(verify_id) == {"errcode": 0, "errmsg": "ok", "verify_ret": 10000}


def test_query_checks_openid_out_seq_no_and_verify_id(sim, wx):
    verify_id = sim.start()["verify_id"]
    other = wx.add_user()["openid"]
    assert sim.query(verify_id, openid=other)["errcode"] == 40097  # not the user who started it
    assert sim.query(verify_id, openid="oNOTaUSERofTHISapp000000000")["errcode"] == 40003
    assert sim.query(verify_id, out_seq_no="order_0009")["errcode"] == 40097
    assert sim.query("no-such-verify-id")["errcode"] == 84001
    assert sim.query(verify_id, cert_hash="")["errcode"] == 47001
    assert sim.query(verify_id)["verify_ret"] == 0


@pytest.mark.parametrize(
    ("outcome", "name", "id_number", "verify_ret"),
    [
        ("pass", NAME, ID_NUMBER, 10000),
        ("other_person", NAME, ID_NUMBER, 10003),
        ("liveness_fail", NAME, ID_NUMBER, 10002),
        ("cancel", NAME, ID_NUMBER, 90004),
        ("pass", "张四", ID_NUMBER, 10003),  # registered ID, another name
        ("pass", NAME, "110101199003078523", 10003),  # well-formed ID nobody holds
        ("pass", NAME, "110101199003078510", 10001),  # wrong check character
    ],
)
def test_performed_outcomes(sim, outcome, name, id_number, verify_ret):
    verify_id = sim.start(name=name, id_number=id_number)["verify_id"]
    assert sim.wx.face_perform(verify_id, outcome) == verify_ret
    assert sim.query(verify_id, name=name, id_number=id_number)["verify_ret"] == verify_ret


def test_people_added_through_the_control_api_pass_until_reset(sim, wx, wechat_sim):
    person = {"name": "赵六", "id_number": "110101199003078523"}
    wx.add_person(**person)
    verify_id = sim.start(**person)["verify_id"]
    assert wx.face_perform(verify_id, "pass") == 10000
    assert sim.query(verify_id, **person)["verify_ret"] == 10000
    wx.reset()  # forgets added people, sessions, tokens and users
    again = Sim(wechat_sim, wx)
    assert again.query(verify_id, **person)["errcode"] == 84001
    fresh = again.start(**person)  # the out_seq_no is free again
    assert wx.face_perform(fresh["verify_id"], "pass") == 10003  # no longer a registered person


def test_verify_id_expires_unused_but_a_result_stays_queryable(sim, wx, clock):
    unused = sim.start("order_0001")["verify_id"]
    used = sim.start("order_0002")["verify_id"]
    wx.face_perform(used, "pass")
    assert wx.advance(3601) == 3601
    assert sim.query(unused, "order_0001")["errcode"] == 84001
    assert sim.query(used, "order_0002")["verify_ret"] == 10000
    # core.clock moves the face clock too (tests freeze and advance it).
    late = sim.start("order_0003")["verify_id"]
    clock.advance(3600)
    assert sim.query(late, "order_0003")["errcode"] == 84001


def test_control_perform_refuses_what_the_sdk_would(sim, wx, wechat_sim):
    verify_id = sim.start()["verify_id"]

    def perform(ref, outcome):
        body = {"ref": ref, "outcome": outcome}
        return requests.post(wechat_sim.url + "_sim/face/perform", json=body, timeout=5)

    assert perform(verify_id, "smile").status_code == 400
    assert perform("nope", "pass").status_code == 404
    assert perform(verify_id, "pass").status_code == 200
    assert perform(verify_id, "pass").status_code == 409  # single use
    expired = sim.start("order_0002")["verify_id"]
    wx.advance(3600)
    assert perform(expired, "pass").status_code == 409


def test_auto_outcome_answers_unperformed_verify_ids(sim, wx):
    verify_id = sim.start()["verify_id"]
    wx.face_auto("liveness_fail")
    assert sim.query(verify_id)["verify_ret"] == 10002
    wx.face_auto(None)
    assert sim.query(verify_id)["verify_ret"] == 10002  # the outcome stuck to that verify_id
    assert sim.query(sim.start("order_0002")["verify_id"], "order_0002")["verify_ret"] == 0


def test_faults_down_latency_and_queued_errors(sim, wx, wechat_sim):
    wx.faults(down=True)
    assert requests.post(wechat_sim.url + GET_VERIFY_ID, json={}, timeout=5).status_code == 503
    stable = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    assert requests.post(wechat_sim.url + "cgi-bin/stable_token", json=stable, timeout=5).status_code == 503
    assert wx.faults(down=False, errors=[-1, 45009])["errors"] == [-1, 45009]
    assert sim.start()["errcode"] == -1
    assert sim.start()["errcode"] == 45009
    assert sim.start()["errcode"] == 0
    wx.faults(latency_ms=300)
    started = time.monotonic()
    assert sim.query("no-such-verify-id")["errcode"] == 84001
    assert time.monotonic() - started >= 0.3
    wx.faults(latency_ms=0)
    report = wx.call_report()
    assert report["counts"][GET_VERIFY_ID] == 4 and report["errors"][GET_VERIFY_ID] == 3
    assert wx.faults(bad_response_signature=True)["bad_response_signature"].startswith("not applicable")
    wx.reset()
    assert wx.call_report() == {"counts": {}, "errors": {}}
