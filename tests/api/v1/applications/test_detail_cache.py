"""GET /v1/applications/{id} is served from the view cache, only to its owner, in its language
and on its day, and dropped after every committed change to what it shows, whichever way the
change was written (ORM or Core statements, the citizen, an officer or a sweeper)."""

from __future__ import annotations

import json
from datetime import timedelta

from core.redis import get_redis
from domain.applications.deadlines import local_date
from domain.applications.drafts import purge_expired_drafts
from domain.applications.models import Application, ApplicationMaterial
from tests.api.v1.applications.conftest import (
    PASSPORT,
    SS_CARD,
    URL,
    create,
    get,
    jpeg,
    key,
    patch,
    relogin,
    stage,
    submit,
    upload,
)
from tests.api.v1.applications.test_bad_input import _ready


def _key(app_id: str, lang: str = "zh") -> str:
    return f"application:{app_id}:{lang}"


def _cached(app_id: str, lang: str = "zh") -> bytes | None:
    return get_redis().get(_key(app_id, lang))


def _warm(client, who, app_id: str) -> dict:
    """Read the view once the last change's tombstone ran out; it is then cached."""
    get_redis().delete(_key(app_id))
    resp = get(client, who, app_id)
    assert resp.status_code == 200, resp.get_json()
    assert _cached(app_id) not in (None, b"-")
    return resp.get_json()


def _seal(services, app_id: str, head: bytes, body: bytes) -> bytes:
    return services.encryptor.encrypt(body, purpose=f"view:{_key(app_id)}:{head.decode()}").encode()


def _open(services, app_id: str, head: bytes, sealed: bytes) -> bytes:
    return services.encryptor.decrypt_bytes(sealed.decode(), purpose=f"view:{_key(app_id)}:{head.decode()}")


def test_the_cached_view_is_what_the_phone_gets(client, zhang, services):
    a = create(client, zhang, service_code=SS_CARD).get_json()
    fresh = _warm(client, zhang, a["id"])
    again = get(client, zhang, a["id"])
    assert again.get_json() == fresh and again.headers["ETag"] == '"r1"'
    assert again.headers["Cache-Control"] == "no-store"
    # Proof that the second read came from the cache: what is there is what is served.
    head, _, sealed = _cached(a["id"]).partition(b"\n")
    assert json.loads(head)["account"] == zhang["account_id"]
    doctored = json.loads(_open(services, a["id"], head, sealed)) | {"service_name": "缓存"}
    get_redis().set(
        _key(a["id"]),
        head + b"\n" + _seal(services, a["id"], head, json.dumps(doctored).encode()),
    )
    assert get(client, zhang, a["id"]).get_json()["service_name"] == "缓存"


def test_the_cached_view_is_encrypted_and_bound_to_its_application_and_owner(client, zhang, services):
    """What the citizen typed is personal data: Redis holds the view encrypted, and a body that
    does not decrypt for this application and owner is rendered afresh, never served."""
    a = create(client, zhang, service_code=SS_CARD).get_json()
    typed = {
        "ss_card_application": {"bank": "icbc"},
        "delivery": {"method": "post", "address": "广州市天河区体育西路1号"},
    }
    a = patch(client, zhang, a, typed).get_json()
    b = create(client, zhang, service_code=SS_CARD).get_json()
    fresh = _warm(client, zhang, a["id"])
    _warm(client, zhang, b["id"])
    assert fresh["data"]["delivery"]["address"] == "广州市天河区体育西路1号"
    raw = _cached(a["id"])
    assert "体育西路".encode() not in raw and b"ss_card_application" not in raw
    head, _, sealed = raw.partition(b"\n")

    get_redis().set(_key(b["id"]), _cached(b["id"]).partition(b"\n")[0] + b"\n" + sealed)  # a's body under b
    assert get(client, zhang, b["id"]).get_json()["id"] == b["id"]

    restamped = json.dumps(json.loads(head) | {"etag": '"r9"'}, separators=(",", ":")).encode()
    get_redis().set(_key(a["id"]), restamped + b"\n" + sealed)  # an old view under a new stamp
    replayed = get(client, zhang, a["id"])
    assert replayed.get_json() == fresh and replayed.headers["ETag"] == f'"r{fresh["revision"]}"'

    plain = json.dumps(fresh | {"service_name": "缓存"}).encode()
    get_redis().set(_key(a["id"]), head + b"\n" + plain)  # a plaintext body is not trusted
    assert get(client, zhang, a["id"]).get_json() == fresh


def test_another_account_never_gets_a_cached_view(client, zhang, li):
    a = create(client, zhang, service_code=SS_CARD).get_json()
    _warm(client, zhang, a["id"])
    resp = get(client, li, a["id"])
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "application.not_found"
    assert zhang["name"] not in resp.get_data(as_text=True)
    assert get(client, zhang, a["id"]).status_code == 200


def test_every_change_drops_the_cached_view(app, client, zhang, officer, db_session, clock):
    a = create(client, zhang, service_code=SS_CARD).get_json()
    assert _cached(a["id"]) == b"-"  # the creation left a tombstone: nothing cached yet

    _warm(client, zhang, a["id"])
    form = {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
    resp = patch(client, zhang, a, form)
    assert resp.status_code == 200 and _cached(a["id"]) == b"-"  # a Core UPDATE
    seen = _warm(client, zhang, a["id"])
    assert seen["revision"] == 2 and seen["data"]["ss_card_application"]["bank"] == "icbc"

    uploaded = upload(client, zhang, a["id"], "id_card", jpeg())
    assert uploaded.status_code == 201 and _cached(a["id"]) == b"-"
    seen = _warm(client, zhang, a["id"])
    assert {m["id"]: m["satisfied"] for m in seen["materials"]}["id_card"] is True

    file_id = uploaded.get_json()["id"]
    gone = client.delete(f"{URL}/{a['id']}/materials/id_card/files/{file_id}", headers=zhang["headers"])
    assert gone.status_code == 204 and _cached(a["id"]) == b"-"  # a Core DELETE of the material
    seen = _warm(client, zhang, a["id"])
    assert {m["id"]: m["satisfied"] for m in seen["materials"]}["id_card"] is False

    # A change to a material row alone (as the shared-data worker makes) drops it too.
    row = ApplicationMaterial(
        application_id=a["id"], material_id="insurance", kind="shared", ref="rec-1", attached_at=clock.now()
    )
    db_session.add(row)
    db_session.commit()
    assert _cached(a["id"]) == b"-"
    seen = _warm(client, zhang, a["id"])
    assert {m["id"]: m["satisfied"] for m in seen["materials"]}["insurance"] is True

    for material in ("id_card", "insurance"):
        assert upload(client, zhang, a["id"], material, jpeg()).status_code == 201
    current = _warm(client, zhang, a["id"])
    assert submit(client, zhang, current).status_code == 200 and _cached(a["id"]) == b"-"
    assert _warm(client, zhang, a["id"])["status"] == "submitted"

    assert stage(client, officer, a["id"], "received").status_code == 200  # an officer's transition
    assert _cached(a["id"]) == b"-"
    assert _warm(client, zhang, a["id"])["status"] == "received"

    withdrawn = client.post(f"{URL}/{a['id']}/withdraw", json={}, headers=zhang["headers"] | key())
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert _cached(a["id"]) == b"-"
    assert _warm(client, zhang, a["id"])["status"] == "withdrawn"

    # The sweeper's purge of an abandoned draft (Core DELETEs): its cached view goes with it.
    b = create(client, zhang, service_code=PASSPORT).get_json()
    _warm(client, zhang, b["id"])
    clock.advance(400 * 86400)
    assert purge_expired_drafts(db_session) == 1
    assert _cached(b["id"]) == b"-"
    get_redis().delete(_key(b["id"]))
    assert get(client, relogin(app, zhang), b["id"]).status_code == 404


def test_a_cached_view_is_served_only_in_its_language_and_on_its_day(app, client, zhang, clock, db_session):
    a = create(client, zhang, service_code=SS_CARD).get_json()
    row = db_session.get(Application, a["id"])
    row.due_on = local_date(clock.now())  # due today: overdue from tomorrow on
    db_session.commit()
    zh = _warm(client, zhang, a["id"])
    assert zh["status_label"] == "草稿" and zh["overdue"] is False
    get_redis().delete(_key(a["id"], "en"))  # the change's tombstone ran out in English too
    en = client.get(f"{URL}/{a['id']}", headers=zhang["headers"] | {"Accept-Language": "en"})
    assert en.get_json()["status_label"] != "草稿" and _cached(a["id"], "en") not in (None, b"-")
    assert get(client, zhang, a["id"]).get_json()["status_label"] == "草稿"

    clock.advance(timedelta(days=1).total_seconds())
    tomorrow = relogin(app, zhang)
    assert _cached(a["id"]) not in (None, b"-")  # still cached, but rendered yesterday
    assert get(client, tomorrow, a["id"]).get_json()["overdue"] is True


def test_a_submission_whose_answer_fails_after_the_commit_still_drops_the_cached_views(
    client, zhang, monkeypatch
):
    # The stale views normally go to Redis with the stored answer (one round trip); an answer
    # that never comes must not leave them behind.
    from domain.applications import detail_view

    a = _ready(client, zhang)
    _warm(client, zhang, a["id"])
    get_redis().delete(f"applications:{zhang['account_id']}")
    assert client.get(URL, headers=zhang["headers"]).status_code == 200  # the list, cached too

    def broken(*_args, **_kwargs):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(detail_view, "render", broken)
    assert submit(client, zhang, a).status_code == 500
    monkeypatch.undo()
    assert _cached(a["id"]) == b"-"
    assert get_redis().get(f"applications:{zhang['account_id']}") == b"-"
    assert _warm(client, zhang, a["id"])["status"] == "submitted"
    listed = client.get(URL, headers=zhang["headers"]).get_json()["items"]
    assert {i["id"]: i["status"] for i in listed}[a["id"]] == "submitted"


def test_when_storing_the_answer_fails_the_cached_views_are_still_dropped(
    client, zhang, services, monkeypatch
):
    # The stale views ride in the idempotency record's round trip; if that trip fails they go
    # on their own afterwards.
    from redis.exceptions import ConnectionError as RedisConnectionError

    from core import idempotency
    from core.redis import Batch

    class FailingBatch(Batch):
        def execute(self):
            raise RedisConnectionError("redis went away")

    a = _ready(client, zhang)
    _warm(client, zhang, a["id"])
    monkeypatch.setattr(idempotency, "Batch", FailingBatch)
    assert submit(client, zhang, a).status_code >= 500  # committed, but its answer was not kept
    monkeypatch.undo()
    assert _cached(a["id"]) == b"-"
    assert _warm(client, zhang, a["id"])["status"] == "submitted"
