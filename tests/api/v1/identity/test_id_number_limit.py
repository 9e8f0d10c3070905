"""Starts naming one ID number with one name are limited per day across accounts and addresses
(VERIFY_PER_ID_NUMBER_PER_DAY, default 10), keyed by a blind index of the pair."""

from __future__ import annotations

from core.redis import get_redis
from tests.api.v1.identity.conftest import CONSENT, LI, URL, ZHANG, refreshed
from tests.conftest import make_citizen


def _start(client, who, method, person=None, *, ip, **headers):
    body = {"method": method, **(person or ZHANG)}
    if method != "id_check":
        body["consent"] = CONSENT
    return client.post(URL, json=body, headers=who["headers"] | headers, environ_base={"REMOTE_ADDR": ip})


def test_many_accounts_cannot_probe_one_id_number(client, app, sims, clock):
    """Ten starts naming one person's ID number with one name in a day, from ten accounts at ten
    addresses (each within its own limits), use that pair's allowance: an eleventh account is
    refused with 429 before any provider is paid, by face or by ID check, in Chinese or English.
    The person themself, typing their real name, is not locked out by it."""
    wrong_name = {"name": "王五", "id_number": ZHANG["id_number"]}
    for i in range(10):
        method = "tencent_faceid" if i % 2 else "id_check"
        resp = _start(client, make_citizen(app), method, wrong_name, ip=f"10.1.0.{i + 1}")
        assert resp.status_code == 201, (i, resp.get_json())
    paid = {name: sim.calls() for name, sim in sims.items()}

    late = make_citizen(app)
    face = _start(client, late, "tencent_faceid", wrong_name, ip="10.2.0.1")
    assert face.status_code == 429, face.get_json()
    error = face.get_json()["error"]
    assert error["code"] == "rate_limited" and error["details"]["scope"] == "id_number"
    assert 0 < int(face.headers["Retry-After"]) <= 86400
    assert error["message"].startswith("操作过于频繁")
    check = _start(client, late, "id_check", wrong_name, ip="10.2.0.2", **{"Accept-Language": "en"})
    assert check.status_code == 429 and check.get_json()["error"]["details"]["scope"] == "id_number"
    assert check.get_json()["error"]["message"].startswith("Too many requests")
    assert {name: sim.calls() for name, sim in sims.items()} == paid  # no provider was asked

    # Another person's number is not affected, nor did the refusals use the account's quota.
    assert _start(client, late, "tencent_faceid", LI, ip="10.2.0.3").status_code == 201
    # The real 张三, not verified yet, still verifies online: strangers who typed a wrong name
    # with his number used up only their own pair's allowance.
    assert _start(client, make_citizen(app), "tencent_faceid", ZHANG, ip="10.2.0.5").status_code == 201
    # The number itself is never in a Redis key; its blind index is.
    keys = [k.decode() for k in get_redis().scan_iter("rl:*")]
    assert not [k for k in keys if ZHANG["id_number"] in k or LI["id_number"] in k], keys
    assert any(k.startswith("rl:id_number:") for k in keys), keys

    clock.advance(days=1, seconds=1)
    again = _start(client, refreshed(client, late), "tencent_faceid", wrong_name, ip="10.2.0.4")
    assert again.status_code == 201


def test_the_account_holding_the_identity_is_not_locked_out_by_strangers(client, app, sims):
    """Once an account holds the identity, others' starts naming its number do not stop its own
    step-up to a face; its own per-account limit still applies."""
    owner = make_citizen(app)
    assert _start(client, owner, "id_check", ip="10.3.0.1").get_json()["identity_level"] == "L2"
    for i in range(9):  # the owner's own ID check was the first start naming the number
        resp = _start(client, make_citizen(app), "tencent_faceid", ip=f"10.3.1.{i + 1}")
        assert resp.status_code == 201, resp.get_json()
    stranger = _start(client, make_citizen(app), "tencent_faceid", ip="10.3.2.1")
    assert stranger.status_code == 429 and stranger.get_json()["error"]["details"]["scope"] == "id_number"
    for i in range(3):
        assert _start(client, owner, "tencent_faceid", ip=f"10.3.3.{i + 1}").status_code == 201
    over = _start(client, owner, "tencent_faceid", ip="10.3.3.9")
    assert over.status_code == 429 and over.get_json()["error"]["details"]["scope"] == "face_account"


def test_one_accounts_own_retries_stay_within_its_own_limits(client, app, sims):
    """A citizen retrying their own number all day (5 ID checks with a typo, 3 faces) meets its
    per-account limits, never the ID number's."""
    who = make_citizen(app)
    typo = {"name": "张四", "id_number": ZHANG["id_number"]}
    for i in range(5):
        assert _start(client, who, "id_check", typo, ip="10.4.0.1").status_code == 201, i
    over = _start(client, who, "id_check", typo, ip="10.4.0.1")
    assert over.status_code == 429 and over.get_json()["error"]["details"]["scope"] == "idcheck_account"
    for i in range(3):
        assert _start(client, who, "alipay_face", ip="10.4.0.1").status_code == 201, i
    over = _start(client, who, "alipay_face", ip="10.4.0.1")
    assert over.status_code == 429 and over.get_json()["error"]["details"]["scope"] == "face_account"


def test_throwaway_accounts_probing_names_from_one_address_meet_its_hourly_limit(client, app, sims, clock):
    """Each account within its own 5 ID checks a day, each name its own allowance: the address
    bounds how many names of one ID number can be tried (paid calls) in an hour."""

    def probe(name: str, ip: str = "10.5.0.1") -> object:
        guess = {"name": name, "id_number": ZHANG["id_number"]}
        return _start(client, make_citizen(app), "id_check", guess, ip=ip)

    for i in range(app.config["IDCHECK_PER_IP_PER_HOUR"]):
        assert probe(f"张{chr(0x4E00 + i)}").status_code == 201, i
    over = probe("张某")
    assert over.status_code == 429 and over.get_json()["error"]["details"]["scope"] == "idcheck_ip"
    elsewhere = _start(client, make_citizen(app), "id_check", LI, ip="10.5.0.2")
    assert elsewhere.status_code == 201  # another address is not held back
    clock.advance(3601)
    assert probe("张某").status_code == 201
