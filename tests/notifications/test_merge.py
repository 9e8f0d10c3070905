"""An account merge (the same person found on two channels) carries their notifications along:
an event told to both accounts does not stop the merge, and a held message still goes out."""

from __future__ import annotations

from typing import Any

from core.db import db
from domain.accounts import merge
from domain.accounts.models import Account, ChannelIdentity
from notifications import app_messages
from notifications.models import Message
from tests.conftest import make_citizen
from tests.notifications.conftest import add_wechat, notify, run_notifier, states

TEMPLATE = "tpl_application_progress"


def _wechat_only(app: Any) -> dict:
    """A second account of the same person without a phone (as a mini-program login makes it)."""
    other = make_citizen(app)
    session = db.session()
    session.query(ChannelIdentity).filter_by(account_id=other["account_id"]).delete()
    session.commit()
    return other


def _fold(source: dict, target: dict) -> None:
    session = db.session()
    merge.fold_into(
        session, source=session.get(Account, source["account_id"]),
        target=session.get(Account, target["account_id"]), actor_id=target["account_id"], reason="bind_phone",
    )  # fmt: skip
    session.commit()


def test_a_notice_both_accounts_got_does_not_stop_the_merge(app: Any, client: Any, person: dict) -> None:
    other = _wechat_only(app)
    svc = app.extensions["yiwang"]
    for who in (person, other):  # a bank posted one message id to both of the person's accounts
        app_messages.post(
            db.session(), svc.notifications.settings, svc.ratelimiter, account_id=who["account_id"],
            client_id="bank-app", client_name="某银行", message_id="bill-202612", title="账单提醒",
            body="您的12月账单已出",
        )  # fmt: skip
    db.session.remove()
    _fold(other, person)
    inbox = client.get("/v1/notifications", headers=person["headers"]).get_json()["items"]
    assert [n["title"] for n in inbox].count("某银行：账单提醒") == 2  # both kept, nothing lost


def test_a_held_wechat_message_goes_out_after_a_merge(
    app: Any, client: Any, person: dict, wechat: Any, daytime: Any
) -> None:
    other = _wechat_only(app)
    openid = add_wechat(app, wechat, other["account_id"])
    wechat.post("subscriptions", {"openid": openid, "template_id": TEMPLATE, "count": 1})
    client.post(
        "/v1/miniprogram/subscriptions", json={"results": {TEMPLATE: "accept"}}, headers=other["headers"]
    )
    daytime.advance(13 * 3600)  # 23:00: held until the quiet hours end
    note = notify(app, other, "case_accepted")
    assert states(app, note.id) == {"wechat": "created"}
    _fold(other, person)
    daytime.advance(8 * 3600 + 60)
    run_notifier(app)
    db.session.remove()
    message = db.session.query(Message).filter_by(notification_id=note.id).one()
    assert (message.state, message.account_id) == ("delivered", person["account_id"])


def test_subscriptions_both_accounts_hold_add_up(app: Any, person: dict) -> None:
    """(Two mini-programs of one province, say: the allowances were granted separately.)"""
    from core import clock
    from notifications.models import WechatSubscription

    other = _wechat_only(app)
    session = db.session()
    for who, remaining in ((person, 1), (other, 2)):
        session.add(WechatSubscription(
            account_id=who["account_id"], template_id=TEMPLATE, remaining=remaining, long_term=False,
            updated_at=clock.now(),
        ))  # fmt: skip
    session.commit()
    _fold(other, person)
    db.session.remove()
    rows = db.session.query(WechatSubscription).filter_by(template_id=TEMPLATE).all()
    assert [(r.account_id, r.remaining) for r in rows] == [(person["account_id"], 3)]


def _choose(client: Any, who: dict, body: dict) -> None:
    resp = client.put("/v1/me/notification-preferences", json=body, headers=who["headers"])
    assert resp.status_code == 200, resp.get_json()


def _choices(client: Any, who: dict) -> tuple[bool, bool]:
    """(quiet hours on, SMS on for an accepted case) as the person's settings page shows them."""
    got = client.get("/v1/me/notification-preferences", headers=who["headers"]).get_json()
    accepted = next(e for e in got["events"] if e["event_type"] == "case_accepted")
    return got["quiet_hours"], accepted["channels"]["sms"]


def test_choices_made_on_the_closed_account_follow_the_person(app: Any, client: Any, person: dict) -> None:
    """An elderly citizen who turned SMS and quiet hours off in the mini-program keeps them so
    once the account is folded into the one holding their phone."""
    other = _wechat_only(app)
    _choose(client, other, {"quiet_hours": False, "events": {"case_accepted": {"sms": False}}})
    _fold(other, person)
    db.session.remove()
    assert _choices(client, person) == (False, False)


def test_of_two_accounts_choices_the_later_ones_stand(
    app: Any, client: Any, person: dict, daytime: Any
) -> None:
    other = _wechat_only(app)
    _choose(client, other, {"quiet_hours": False, "events": {"case_accepted": {"sms": False}}})
    daytime.advance(60)
    _choose(client, person, {"quiet_hours": True})
    _fold(other, person)
    db.session.remove()
    assert _choices(client, person) == (True, True)  # the surviving account's, made later

    third = _wechat_only(app)
    daytime.advance(60)
    _choose(client, third, {"quiet_hours": False, "events": {"case_accepted": {"sms": False}}})
    _fold(third, person)
    db.session.remove()
    assert _choices(client, person) == (False, False)  # the closed account's, made later
