"""A face the citizen finished just before its handle expired still counts when the phone's call
to complete arrives a moment later; an attempt with no face by then ends as expired."""

from __future__ import annotations

from tests.api.v1.identity.conftest import complete, mini_citizen, ref_of, refreshed, start


def test_face_done_in_time_is_not_lost_when_completed_just_after_expiry(client, wx, sims, clock):
    who = mini_citizen(client, wx)
    body = start(client, who, "wechat_face").get_json()
    clock.advance(seconds=3590)
    sims["wechat_face"].perform(ref_of(body), "pass")  # done 10 s before the verify_id expires
    clock.advance(seconds=15)  # the phone's complete call arrives 5 s after expires_at
    who = refreshed(client, who)
    done = complete(client, who, body["verification"]["id"]).get_json()
    assert done["verification"]["status"] == "passed", done["verification"]


def test_no_face_by_the_expiry_ends_as_expired(client, wx, sims, clock):
    who = mini_citizen(client, wx)
    body = start(client, who, "wechat_face").get_json()
    clock.advance(seconds=3605)  # nothing done at WeChat, and the handle has expired
    who = refreshed(client, who)
    done = complete(client, who, body["verification"]["id"]).get_json()
    assert done["verification"]["status"] == "expired", done["verification"]
