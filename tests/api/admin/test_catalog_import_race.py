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
