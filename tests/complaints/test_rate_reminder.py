"""Citizens (many elderly) miss a silent rating period: an answered complaint's citizen is reminded
COMPLAINT_RATE_REMIND_DAYS_BEFORE Beijing days before its last day to rate (`rate_by`), once per
answer round, and told when the complaint is closed because the answer went unrated."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from core.clock import BEIJING, local_date
from core.db import db
from domain.accounts.models import Account
from domain.complaints.models import Complaint
from notifications import fanout
from tests.api.v1.applications.conftest import seeded, zhang  # noqa: F401 - fixtures
from tests.complaints.test_concurrency import _rate, _replied, _reply, operators  # noqa: F401 - fixtures
from tests.complaints.test_unrated import _again, _complaint
from tests.domain.operators.factories import admin_headers, make_operator
from tests.evaluations.meanwhile import meanwhile
from workers import sweeper

REMINDER = "complaint_rate_reminder"
CLOSED = "complaint_closed_unrated"


def _sweep(app: Any) -> dict:
    with app.app_context():
        done = sweeper.complaint_pass(db.session())
    db.session.remove()
    return done


def _told(client: Any, who: dict, event_type: str, lang: str = "zh") -> list[dict]:
    headers = who["headers"] | {"Accept-Language": lang}
    items = client.get("/v1/notifications", headers=headers).get_json()["items"]
    return [n for n in items if n["event_type"] == event_type]


def _to_beijing_midnight(clock: Any, day: Any) -> None:
    """The clock moved to 00:00 Beijing time of `day` (16:00 UTC the day before)."""
    target = datetime.combine(day, time(0), BEIJING).astimezone(UTC)
    clock.advance((target - clock.now()).total_seconds())


def _rate_by(clock: Any) -> Any:
    return local_date(clock.now()) + timedelta(days=15)


def test_the_citizen_is_reminded_three_beijing_days_before_the_last_day_once(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    rate_by = _rate_by(clock)
    tracking_no = _complaint(client, zhang, complaint_id)["tracking_no"]
    _to_beijing_midnight(clock, rate_by - timedelta(days=3))
    clock.advance(-1)  # 23:59:59 the day before the reminder day
    assert _sweep(app)["complaints_rate_reminded"] == 0
    zhang = _again(app, zhang)
    assert _told(client, zhang, REMINDER) == []

    clock.advance(1)  # the reminder day has begun in Beijing (still the day before in UTC)
    assert _sweep(app)["complaints_rate_reminded"] == 1
    told = _told(client, zhang, REMINDER)
    assert len(told) == 1
    assert told[0]["title"] == "请评价您的投诉答复"
    assert told[0]["body"] == (
        f"您的投诉（编号 {tracking_no}）已答复，请于 {rate_by.isoformat()}（含当日）前在“我的投诉咨询”"
        "评价；逾期未评价将自动办结。"
    )
    english = _told(client, zhang, REMINDER, "en")[0]
    assert f"by {rate_by.isoformat()} (inclusive)" in english["body"]
    assert "closed automatically" in english["body"]

    clock.advance(hours=5)
    assert _sweep(app)["complaints_rate_reminded"] == 0  # once, however often the sweeper runs
    clock.advance(days=1)
    assert _sweep(app)["complaints_rate_reminded"] == 0
    assert len(_told(client, _again(app, zhang), REMINDER)) == 1


def test_a_reminder_the_sweeper_missed_is_sent_on_a_later_day_of_the_period(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    _replied(client, zhang, operators[0])
    clock.advance(days=15)  # the last day to rate
    assert _sweep(app)["complaints_rate_reminded"] == 1
    assert len(_told(client, _again(app, zhang), REMINDER)) == 1


def test_a_citizen_who_rated_is_not_reminded(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    closed = _replied(client, zhang, operators[0])
    again = _replied(client, zhang, operators[1])
    clock.advance(days=5)
    zhang = _again(app, zhang)
    assert _rate(client, zhang, closed, "满意").status_code == 200
    assert _rate(client, zhang, again, "不满意").status_code == 200  # back to the department
    clock.advance(days=7)
    assert _sweep(app)["complaints_rate_reminded"] == 0
    assert _told(client, _again(app, zhang), REMINDER) == []


def test_each_answer_round_gets_its_own_reminder(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    clock.advance(days=12)
    assert _sweep(app)["complaints_rate_reminded"] == 1
    zhang = _again(app, zhang)
    assert _rate(client, zhang, complaint_id, "不满意").status_code == 200
    operator = admin_headers(client, make_operator(app, username="hotline-late", roles=("case_operator",)))
    assert _reply(client, operator, complaint_id, "再次核实").status_code == 200
    rate_by = _rate_by(clock)
    assert _sweep(app)["complaints_rate_reminded"] == 0  # the new answer's reminder day is to come
    clock.advance(days=12)
    assert _sweep(app)["complaints_rate_reminded"] == 1
    told = _told(client, _again(app, zhang), REMINDER)
    assert len(told) == 2 and f"请于 {rate_by.isoformat()}（含当日）前" in told[0]["body"]  # newest first


def test_a_reminder_already_sent_is_not_sent_again_when_its_mark_is_lost(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    clock.advance(days=12)
    assert _sweep(app)["complaints_rate_reminded"] == 1
    session = db.session()
    session.get(Complaint, complaint_id).rate_reminded_at = None  # a downgrade and upgrade forgot it
    session.commit()
    assert _sweep(app)["complaints_rate_reminded"] == 0
    assert len(_told(client, _again(app, zhang), REMINDER)) == 1


def test_two_sweepers_at_once_remind_once(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
    monkeypatch: Any,
) -> None:
    _replied(client, zhang, operators[0])
    clock.advance(days=12)
    # The second pass starts while the first is writing the notice, the complaint locked.
    other = meanwhile(monkeypatch, fanout, app, lambda _client: _sweep(app))
    first = _sweep(app)
    second = other.finish()
    assert other.waited, "the second pass went through while the first held the complaint"
    assert (first["complaints_rate_reminded"], second["complaints_rate_reminded"]) == (1, 0)
    assert len(_told(client, _again(app, zhang), REMINDER)) == 1


def test_the_citizen_is_told_once_when_the_unrated_complaint_is_closed(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    rate_by = _rate_by(clock)
    tracking_no = _complaint(client, zhang, complaint_id)["tracking_no"]
    clock.advance(days=15)
    assert _sweep(app)["complaints_closed_unrated"] == 0
    assert _told(client, _again(app, zhang), CLOSED) == []
    clock.advance(days=1)
    assert _sweep(app)["complaints_closed_unrated"] == 1
    assert _sweep(app)["complaints_closed_unrated"] == 0
    zhang = _again(app, zhang)
    told = _told(client, zhang, CLOSED)
    assert len(told) == 1
    assert told[0]["body"] == (
        f"您的投诉（编号 {tracking_no}）因超过评价期限（{rate_by.isoformat()}，含当日）未评价，已自动办结。"
    )
    assert "closed automatically" in _told(client, zhang, CLOSED, "en")[0]["body"]


def test_no_reminder_when_reminders_are_off(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
    monkeypatch: Any,
) -> None:
    monkeypatch.setitem(app.config, "COMPLAINT_RATE_REMIND_DAYS_BEFORE", 0)
    _replied(client, zhang, operators[0])
    for _ in range(15):
        clock.advance(days=1)
        assert _sweep(app)["complaints_rate_reminded"] == 0
    clock.advance(days=1)
    assert _sweep(app)["complaints_closed_unrated"] == 1  # still closed, and the citizen told
    zhang = _again(app, zhang)
    assert _told(client, zhang, REMINDER) == [] and len(_told(client, zhang, CLOSED)) == 1


def test_a_closed_account_is_neither_reminded_nor_told(
    app: Any,
    client: Any,
    clock: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    session = db.session()
    session.get(Account, zhang["account_id"]).closed_at = clock.now()
    session.commit()
    clock.advance(days=12)
    assert _sweep(app)["complaints_rate_reminded"] == 0
    clock.advance(days=4)
    assert _sweep(app)["complaints_closed_unrated"] == 1
    session = db.session()
    assert session.get(Complaint, complaint_id).status == "closed"
    from notifications.models import Notification

    kinds = {n.event_type for n in session.query(Notification).filter_by(account_id=zhang["account_id"])}
    assert kinds.isdisjoint({REMINDER, CLOSED})


def test_the_wechat_remark_and_the_sms_status_fit_and_name_the_day() -> None:
    from notifications.events import EVENTS
    from notifications.templates import fill

    def shown(event_type: str, params: dict) -> tuple[str, str]:
        filled = fill(event_type, params)
        return filled["note"], EVENTS[event_type].sms_status.format_map(filled)

    params = {"kind": "complaint", "case_number": "TS1", "rate_by": "2026-12-22"}
    remark, status = shown(REMINDER, params)
    assert (remark, status) == ("请于2026-12-22前评价", "待评价，请于2026-12-22前评价")
    assert len(remark) <= 20 and len(status) <= 35
    remark, status = shown(CLOSED, params)
    assert (remark, status) == ("逾期未评价，已自动办结", "逾期未评价，已自动办结")
    assert len(remark) <= 20 and len(status) <= 35
