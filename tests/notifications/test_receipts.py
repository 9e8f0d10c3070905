"""Provider delivery reports: kept once, applied once, in whatever order they arrive."""

from __future__ import annotations

import threading
import time
from typing import Any

from core.db import db
from notifications import delivery
from notifications.models import DeliveryReceipt
from tests.notifications.conftest import Sim, notify, run_notifier, states


def texts(sms: Sim) -> list[dict]:
    return sms.get("messages")["messages"]


def test_a_success_report_marks_the_sms_delivered(app: Any, person: dict, sms_reports: Sim) -> None:
    note = notify(app, person, "case_refused", reason="材料不齐")  # no other channel: SMS at once
    run_notifier(app)
    assert states(app, note.id) == {"sms": "sent"}
    serial = texts(sms_reports)[0]["serial_no"]
    sms_reports.post("receipts", {"serial_no": serial, "status": "SUCCESS"})
    assert states(app, note.id) == {"sms": "delivered"}


def test_duplicate_and_conflicting_reports_make_one_transition(
    app: Any, person: dict, sms_reports: Sim
) -> None:
    note = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    serial = texts(sms_reports)[0]["serial_no"]
    for status in ("FAIL", "FAIL", "SUCCESS", "FAIL"):
        sms_reports.post("receipts", {"serial_no": serial, "status": status})
    assert states(app, note.id) == {"sms": "permanent_failure"}  # the first final report wins
    db.session.remove()
    kept = db.session.query(DeliveryReceipt).filter_by(provider_msg_id=serial).all()
    assert sorted(r.status for r in kept) == ["delivered", "permanent_failure"]  # repeats kept once


def test_a_report_that_arrives_before_the_send_answer_still_applies(
    app: Any, person: dict, sms_reports: Sim
) -> None:
    sms_reports.post("receipts", {"mode": "before", "status": "SUCCESS", "copies": 2})
    note = notify(app, person, "supplement_requested", materials=["身份证复印件"])
    run_notifier(app)
    assert states(app, note.id) == {"sms": "delivered"}
    assert len(texts(sms_reports)) == 1


def test_reports_need_the_secret_path_and_a_well_formed_body(app: Any, client: Any) -> None:
    ok = f"/v1/platform/sms-receipts/{app.config['SMS_RECEIPT_TOKEN']}"
    assert client.post("/v1/platform/sms-receipts/wrong-token", json=[{"sid": "x"}]).status_code == 401
    bad = client.post(ok, json={"sid": "x"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "platform.bad_event"
    unknown = client.post(ok, json=[{"sid": "no-such-message", "report_status": "SUCCESS"}])
    assert unknown.status_code == 200 and unknown.get_json() == {"result": 0, "errmsg": "OK"}
    # Text no database takes: a lone surrogate is not JSON we read; NUL is refused by PostgreSQL,
    # which the API answers as bad input (400 request.invalid_value), never a 500.
    surrogate = client.post(ok, data='[{"sid": "\\ud800"}]', content_type="application/json")
    assert surrogate.status_code == 400 and surrogate.get_json()["error"]["code"] == "platform.bad_event"
    nul = client.post(ok, json=[{"sid": "a\x00b", "report_status": "SUCCESS"}])
    if db.engine.dialect.name == "postgresql":
        assert nul.status_code == 400 and nul.get_json()["error"]["code"] == "request.invalid_value"
    else:  # SQLite stores NUL: the report names no message
        assert nul.status_code == 200


def test_apply_receipt_ignores_reports_for_final_messages(app: Any, person: dict, sms_reports: Sim) -> None:
    note = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    serial = texts(sms_reports)[0]["serial_no"]
    session = db.session()
    assert delivery.apply_receipt(session, channel="sms", provider_msg_id=serial, delivered=True) is True
    session.commit()
    assert delivery.apply_receipt(session, channel="sms", provider_msg_id=serial, delivered=True) is False
    assert delivery.apply_receipt(session, channel="sms", provider_msg_id=serial, delivered=False) is False
    session.commit()
    assert states(app, note.id) == {"sms": "delivered"}


def test_a_report_committed_while_the_send_is_recorded_is_applied(app: Any, person: dict, sms: Sim) -> None:
    """The provider's report arrives in the instant the sender records the send's answer: the
    report's transaction found the message still sending, and the sender's look-up could not
    see the uncommitted report. Whichever commits second must apply it."""
    from sqlalchemy.orm import Session

    from notifications.channels import Outcome
    from notifications.models import SENT, Message

    deps = app.extensions["yiwang"].notifications
    note = notify(app, person, "case_refused", reason="材料不齐")  # SMS only: due at once
    delivery.fallback_pass(db.session(), deps.settings)
    sender = deps.sender()
    [(message_id, attempt)] = sender.claim(db.session(), 10)
    created = db.session().get(Message, message_id).created_at
    db.session.remove()
    report_kept, recording = threading.Event(), threading.Event()

    def report() -> None:  # the receipts endpoint's request, its transaction still open
        reports = Session(db.engine)
        try:
            applied = delivery.apply_receipt(
                reports, channel="sms", provider_msg_id="2001:42", delivered=True
            )
            assert applied is False  # the message is still being sent
            report_kept.set()
            recording.wait(5)
            time.sleep(0.5)  # the sender records meanwhile (or waits for this commit)
            reports.commit()
        finally:
            reports.close()

    reporter = threading.Thread(target=report)
    reporter.start()
    assert report_kept.wait(10)
    recording.set()
    session = db.session()
    outcome = Outcome(SENT, provider_msg_id="2001:42")
    sender.record_many(session, [(message_id, "sms", attempt, created, outcome)])
    session.commit()
    reporter.join(10)
    db.session.remove()
    kept = db.session().query(DeliveryReceipt).filter_by(provider_msg_id="2001:42").one()
    assert kept.status == "delivered"
    assert states(app, note.id) == {"sms": "delivered"}
