"""Two catalog editors importing the same new item at the same moment: both are answered, one
creates the item and the other finds it unchanged; never a server error."""

from __future__ import annotations

import threading
from typing import Any

from core.db import db
from domain.catalog import importing
from tests.domain.catalog.factories import document, item
from tests.domain.operators.factories import admin_headers, make_operator


def test_the_same_new_item_imported_twice_at_once(app: Any, client: Any, monkeypatch: Any) -> None:
    editors = [
        admin_headers(client, make_operator(app, username=name, roles=("catalog_editor",)))
        for name in ("ed1", "ed2")
    ]
    real, barrier = importing.validate_import, threading.Barrier(2)

    def paced(session: Any, doc: Any, **kw: Any) -> Any:
        out = real(session, doc, **kw)
        try:  # both judged the item new at the same moment, unless one waits for the other
            barrier.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass
        return out

    monkeypatch.setattr(importing, "validate_import", paced)
    answers: list[tuple[int, Any]] = []

    def run(headers: dict) -> None:
        try:
            resp = app.test_client().post("/admin/v1/catalog/import", json=document(item()), headers=headers)
            answers.append((resp.status_code, resp.get_json()))
        finally:
            db.remove()

    threads = [threading.Thread(target=run, args=(h,)) for h in editors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [code for code, _ in answers] == [200, 200], answers
    changes = sorted(change for _, body in answers for change in body["items"].values())
    assert changes == ["created", "unchanged"], answers


def test_a_version_published_during_an_import_is_never_rewritten(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    """Editor A imports a change to an item whose newest version is still a draft; editor B
    publishes that version while A's import is being checked. A published version is never
    changed: B's publish waits for the import, and publishes what the import left."""
    from tests.concurrency import Competing

    url = "/admin/v1/catalog"
    headers = admin_headers(client, make_operator(app, username="carol", roles=("catalog_editor",)))
    other = admin_headers(client, make_operator(app, username="dave", roles=("catalog_editor",)))
    code = item()["code"]
    assert client.post(f"{url}/import", json=document(item()), headers=headers).status_code == 200  # v1 draft
    real, publishes = importing.validate_import, []

    def paced(session: Any, doc: Any, **kw: Any) -> Any:
        out = real(session, doc, **kw)
        if kw.get("for_write") and not publishes:
            publishes.append(Competing(app, lambda c: c.post(f"{url}/items/{code}/publish", headers=other)))
        return out

    monkeypatch.setattr(importing, "validate_import", paced)
    resp = client.post(f"{url}/import", json=document(item(name="居民身份证换领（试行）")), headers=headers)
    assert resp.status_code == 200, resp.get_json()
    assert publishes[0].result().status_code == 200
    v1 = client.get(f"/v1/services/{code}/versions/1").get_json()
    listed = client.get("/v1/services", query_string={"q": "居民身份证换领"}).get_json()
    entry = next(i for i in listed["items"] if i["code"] == code)
    # The publish waited for the import and published what it left: version 1 reads as listed.
    assert v1["name"] == entry["name"] == "居民身份证换领（试行）", (
        resp.get_json()["items"],
        v1["name"],
        entry,
    )
