"""Step-up: a service's identity requirement against the token's level and live-check time."""

import pytest

from domain.identity import levels
from domain.identity.errors import FreshFaceRequired, LevelRequired

APP = ("tencent_faceid", "alipay_face", "id_check")
NOW = 1_800_000_000.0


def test_lower_level_is_refused_with_what_is_needed_and_how():
    with pytest.raises(LevelRequired) as exc:
        levels.check(levels.Requirement("L3"), level="L2", live_checked_at=None, now=NOW, offered=APP)
    assert exc.value.status == 403
    assert exc.value.code == "identity.level_required"
    assert exc.value.details["required_level"] == "L3"
    assert exc.value.details["methods"] == ["tencent_faceid", "alipay_face", "in_person"]


def test_l2_can_be_reached_by_the_id_check_as_well():
    with pytest.raises(LevelRequired) as exc:
        levels.check(levels.Requirement("L2"), level="L1", live_checked_at=None, now=NOW, offered=APP)
    assert "id_check" in exc.value.details["methods"]


def test_fresh_face_requirement_refuses_an_old_check_and_accepts_a_new_one():
    need = levels.Requirement("L3", face_within_minutes=10)
    with pytest.raises(FreshFaceRequired) as exc:
        levels.check(need, level="L3", live_checked_at=NOW - 601, now=NOW, offered=APP)
    assert exc.value.code == "identity.fresh_face_required"
    assert exc.value.details["max_age_seconds"] == 600
    levels.check(need, level="L3", live_checked_at=NOW - 599, now=NOW, offered=APP)


def test_l3_without_a_recorded_live_check_is_not_fresh():
    with pytest.raises(FreshFaceRequired):
        levels.check(levels.Requirement("L3", 5), level="L3", live_checked_at=None, now=NOW, offered=APP)


def test_higher_level_meets_a_lower_requirement():
    levels.check(levels.Requirement("L2"), level="L3", live_checked_at=None, now=NOW, offered=APP)
    assert levels.higher("L2", "L3") == "L3"
    assert levels.higher("L3", "L1") == "L3"
