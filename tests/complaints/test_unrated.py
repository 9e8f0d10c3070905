"""An answer the citizen never rates does not keep the complaint 已答复 for ever: the answer's
notice names the last day to rate it (`rate_by`, COMPLAINT_RATE_DAYS Beijing days on, inclusive),
and after that day the sweeper closes the complaint without a rating."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.clock import local_date
from core.db import db
from domain.accounts.models import Account
from domain.auth import sessions
from domain.complaints.models import Complaint
from domain.complaints.unrated import close_unrated
from tests.api.v1.applications.conftest import seeded, zhang  # noqa: F401 - fixtures
from tests.complaints.test_complaints import URL
from tests.complaints.test_concurrency import _rate, _replied, _reply, operators  # noqa: F401 - fixtures
from tests.domain.operators.factories import admin_headers, make_operator
from workers import sweeper


def _again(app: Any, who: dict) -> dict:
    """The citizen signed in again (days later: the first session's access token has expired)."""
    svc = app.extensions["yiwang"]
    session = db.session()
    account = session.get(Account, who["account_id"])
    pair = sessions.start_session(
        session, tokens=svc.tokens, policy=svc.citizen_policy, account=account, channel="app",
        device_label="测试手机",
    )  # fmt: skip
    return who | {"headers": {"Authorization": f"Bearer {pair.access_token}"}}


def _sweep(clock: Any) -> int:
    done = close_unrated(db.session(), clock.now(), rate_days=15)
    db.session.remove()
    return done


def _complaint(client: Any, who: dict, complaint_id: str, lang: str = "zh") -> dict:
    headers = who["headers"] | {"Accept-Language": lang}
    return client.get(f"{URL}/{complaint_id}", headers=headers).get_json()


def test_the_answer_names_the_last_day_to_rate_it(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    day = (local_date(clock.now()) + timedelta(days=15)).isoformat()
    assert _complaint(client, zhang, complaint_id)["rate_by"] == day
    inbox = client.get("/v1/notifications", headers=zhang["headers"]).get_json()["items"]
    told = next(n for n in inbox if n["event_type"] == "complaint_replied")
    assert f"请于 {day}（含当日）前评价，逾期未评价将自动办结" in told["body"]
    english = client.get("/v1/notifications", headers=zhang["headers"] | {"Accept-Language": "en"}).get_json()
    told = next(n for n in english["items"] if n["event_type"] == "complaint_replied")
    assert f"by {day} (inclusive)" in told["body"]


def test_unrated_after_its_last_day_the_complaint_is_closed_without_a_rating(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    clock.advance(days=15)  # the last day: still the citizen's to rate
    assert _sweep(clock) == 0
    zhang = _again(app, zhang)
    assert _complaint(client, zhang, complaint_id)["status"] == "replied"

    clock.advance(days=1)
    assert _sweep(clock) == 1
    zhang = _again(app, zhang)
    shown = _complaint(client, zhang, complaint_id)
    assert (shown["status"], shown["status_label"], shown["reply_rating"], shown["rate_by"]) == (
        "closed", "已办结", None, None,
    )  # fmt: skip
    last = shown["timeline"][-1]
    assert (last["kind"], last["details"]) == ("closed", {"reason": "not_rated"})
    late = _rate(client, zhang, complaint_id, "满意")
    assert late.status_code == 409 and "已办结" in late.get_json()["error"]["message"]
    assert _sweep(clock) == 0  # closed once


def test_a_rating_ends_the_period_and_the_next_answer_has_its_own(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    clock.advance(days=10)
    zhang = _again(app, zhang)
    assert _rate(client, zhang, complaint_id, "不满意").status_code == 200
    assert _complaint(client, zhang, complaint_id)["rate_by"] is None
    clock.advance(days=10)
    operator = admin_headers(client, make_operator(app, username="hotline-late", roles=("case_operator",)))
    assert _reply(client, operator, complaint_id, "再次核实").status_code == 200
    day = (local_date(clock.now()) + timedelta(days=15)).isoformat()
    zhang = _again(app, zhang)
    assert _complaint(client, zhang, complaint_id)["rate_by"] == day
    clock.advance(days=6)  # past the first answer's period, within the second's
    assert _sweep(clock) == 0
    assert _complaint(client, _again(app, zhang), complaint_id)["status"] == "replied"


def test_an_answer_given_before_periods_were_kept_gets_one_and_the_citizen_is_told_it(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
    monkeypatch: Any,
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    session = db.session()
    session.get(Complaint, complaint_id).rate_by = None  # as the migration leaves it
    session.commit()
    clock.advance(days=30)
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)
    with app.app_context():
        assert sweeper.run_once(0)["complaints_closed_unrated"] == 0  # never told a day: not closed
    day = (local_date(clock.now()) + timedelta(days=15)).isoformat()
    zhang = _again(app, zhang)
    assert _complaint(client, zhang, complaint_id)["rate_by"] == day
    inbox = client.get("/v1/notifications", headers=zhang["headers"]).get_json()["items"]
    told = [n["body"] for n in inbox if n["event_type"] == "complaint_replied"]
    assert len(told) == 2 and f"请于 {day}（含当日）前评价" in told[0], told  # newest first
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)
    with app.app_context():
        sweeper.run_once(0)  # told once
    inbox = client.get("/v1/notifications", headers=zhang["headers"]).get_json()["items"]
    assert len([n for n in inbox if n["event_type"] == "complaint_replied"]) == 2


def test_a_later_answer_closed_unrated_does_not_show_the_earlier_rounds_rating(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    assert _rate(client, zhang, complaint_id, "不满意").status_code == 200
    answered = _reply(client, operators[1], complaint_id, "再次核实")
    assert answered.status_code == 200
    shown = _complaint(client, zhang, complaint_id)
    assert (shown["status"], shown["reply_rating"]) == ("replied", None)  # this answer is not rated yet
    assert [e["details"].get("rating") for e in shown["timeline"] if e["kind"] == "rated"] == ["不满意"]
    clock.advance(days=16)
    assert _sweep(clock) == 1
    shown = _complaint(client, _again(app, zhang), complaint_id)
    assert (shown["status"], shown["reply_rating"]) == ("closed", None)


def test_the_wechat_remark_and_the_sms_status_name_the_day_too() -> None:
    from notifications.events import EVENTS
    from notifications.templates import fill

    def shown(params: dict) -> tuple[str, str]:
        filled = fill("complaint_replied", params)
        return filled["note"], EVENTS["complaint_replied"].sms_status.format_map(filled)

    remark, status = shown({"kind": "complaint", "case_number": "TS1", "rate_by": "2026-12-22"})
    assert (remark, status) == ("请于2026-12-22前评价", "已答复，请于2026-12-22前评价")
    assert len(remark) <= 20 and len(status) <= 35
    # A notice stored before rating periods.
    assert shown({"kind": "complaint", "case_number": "TS1"}) == ("请查看答复并评价", "已答复")


def test_the_sweeper_pass_closes_them(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
    monkeypatch: Any,
) -> None:
    _replied(client, zhang, operators[0])
    clock.advance(days=16)
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)
    with app.app_context():
        done = sweeper.run_once(0)
    assert done["complaints_closed_unrated"] == 1
