"""After every flow has run, no plaintext name or ID number of the test people is anywhere:
not in any database column, not in Redis, not in any log record (ours, the simulators', HTTP)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from core.db import Base
from core.redis import get_redis
from tests.api.v1.identity.conftest import LI, ZHANG, bearer, complete, mini_citizen, ref_of, start
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator

OUYANG = {"name": "欧阳明月", "id_number": "440106199208150021"}
WANG = {"name": "王小红", "id_number": "310104200001017729"}


def _secrets():
    people = (ZHANG, LI, OUYANG, WANG)
    values = {p["name"] for p in people} | {p["id_number"] for p in people}
    # Also the ID numbers' distinctive middle (birth date + sequence), in case of partial leaks.
    values |= {p["id_number"][6:17] for p in people}
    return values


def _exercise(app, client, wx, sims):
    for sim in ("tencent_faceid", "alipay_face", "id_check"):
        sims[sim].post("people", OUYANG)
    # ID check: pass, mismatch, no record.
    a = make_citizen(app)
    # Retried writes carry a key: its stored fingerprint must not reveal the body either.
    key = {"Idempotency-Key": "idcheck-zhang-0001"}
    checked = start(client, a, "id_check", person=ZHANG, consent=None, **key).get_json()
    assert checked["identity_level"] == "L2"
    b = make_citizen(app)
    start(client, b, "id_check", person={"name": "张四", "id_number": ZHANG["id_number"]}, consent=None)
    # Every face provider: one pass, one failure.
    for method, person in (("tencent_faceid", LI), ("alipay_face", OUYANG)):
        other = make_citizen(app)
        body = start(client, other, method, person=person).get_json()
        sims[method].perform(ref_of(body), "other_person")
        complete(client, other, body["verification"]["id"])
        who = make_citizen(app)
        body = start(client, who, method, person=person).get_json()
        sims[method].perform(ref_of(body), "pass")
        assert complete(client, who, body["verification"]["id"]).get_json()["identity_level"] == "L3"
    mini = mini_citizen(client, wx)
    body = start(client, mini, "wechat_face", person=WANG).get_json()
    sims["wechat_face"].perform(ref_of(body), "pass")
    tokens = complete(client, mini, body["verification"]["id"]).get_json()["tokens"]
    # The owner reads the full values; a bad request echoes nothing back into logs.
    client.get("/v1/identity/full", query_string={"purpose": "view"}, headers=bearer(tokens))
    start(client, make_citizen(app), "id_check", person={"name": "张三", "id_number": "110101199003078514"})
    # An in-person check.
    hall = admin_headers(client, make_operator(app, username="hall2", roles=("hall_officer",)))
    c = make_citizen(app)
    body = {"account_id": c["account_id"], **OUYANG, "hall": "天河", "document_checked": True}
    assert client.post("/admin/v1/identity/in-person-checks", json=body, headers=hall).status_code == 409
    # Provider failures on the way.
    sims["tencent_faceid"].post("faults", {"down": True})
    start(client, make_citizen(app), "tencent_faceid", person=LI)
    sims["tencent_faceid"].post("faults", {"down": False})


def test_no_plaintext_identity_in_the_database_redis_or_logs(app, client, wx, sims, db_session, caplog):
    caplog.set_level(logging.DEBUG)
    _exercise(app, client, wx, sims)
    secrets = _secrets()

    db_session.rollback()
    found = []
    for table in Base.metadata.sorted_tables:
        for row in db_session.execute(select(table)).all():
            text = " ".join(str(v) for v in row)
            found += [(table.name, s) for s in secrets if s in text]
    assert found == [], f"plaintext personal data in the database: {found}"

    redis = get_redis()
    dump = []
    for key in redis.scan_iter(count=500):
        kind = redis.type(key).decode()
        value = {
            "string": lambda k: redis.get(k),
            "hash": lambda k: redis.hgetall(k),
            "list": lambda k: redis.lrange(k, 0, -1),
            "set": lambda k: redis.smembers(k),
            "zset": lambda k: redis.zrange(k, 0, -1),
        }.get(kind, lambda k: b"")(key)
        dump.append(repr(key) + repr(value))
    blob = "".join(dump)
    decoded = blob.encode().decode("unicode_escape", errors="ignore").encode("latin-1", errors="ignore")
    redis_text = blob + decoded.decode("utf-8", errors="ignore")
    assert [s for s in secrets if s in redis_text] == []

    assert len(caplog.records) > 0
    log_text = "\n".join(
        f"{r.getMessage()} {r.args!r} {r.__dict__!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert [s for s in secrets if s in log_text] == [], "plaintext personal data in the logs"
