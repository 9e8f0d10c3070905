"""Assurance levels and the step-up check services use.

L1: a phone number or WeChat identity is bound (every account);
L2: name + ID number confirmed by the public-security two-element check;
L3: a live face matched to that identity (WeChat, Tencent FaceID, Alipay) or an in-person
    check by an operator at a service hall (the non-face path).
Freshness: a service may demand that the latest live check (face or in person) is at most
N minutes old; the token carries its time (claim `ilt`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.identity.errors import FreshFaceRequired, LevelRequired
from domain.identity.models import FACE_METHODS, ID_CHECK, IN_PERSON

LEVELS = ("L0", "L1", "L2", "L3")


def rank(level: str | None) -> int:
    """Order of a level; unknown values rank lowest."""
    return LEVELS.index(level) if level in LEVELS else 0


def higher(a: str, b: str) -> str:
    """The higher of two levels."""
    return a if rank(a) >= rank(b) else b


@dataclass(frozen=True)
class Requirement:
    """What a service needs: a minimum level and, optionally, a live check within N minutes."""

    min_level: str = "L1"
    face_within_minutes: int | None = None

    @classmethod
    def of(cls, doc: Mapping[str, Any] | None) -> Requirement:
        """From a catalog item's `identity` block."""
        doc = doc or {}
        return cls(doc.get("min_level") or "L1", doc.get("face_within_minutes") or None)


def methods_for(level: str, offered: Sequence[str]) -> list[str]:
    """The methods (of those the channel offers) that can bring an account to `level`."""
    if rank(level) >= rank("L3"):
        return [m for m in offered if m in FACE_METHODS] + [IN_PERSON]
    if rank(level) == rank("L2"):
        return [m for m in offered if m in (*FACE_METHODS, ID_CHECK)] + [IN_PERSON]
    return []


def check(
    requirement: Requirement, *, level: str, live_checked_at: float | None, now: float, offered: Sequence[str]
) -> None:
    """Raise LevelRequired or FreshFaceRequired unless (level, live check time) meet `requirement`.

    The error's details tell the phone what is needed and which methods can provide it.
    """
    details: dict[str, Any] = {
        "required_level": requirement.min_level,
        "current_level": level,
        "max_age_seconds": requirement.face_within_minutes * 60 if requirement.face_within_minutes else None,
        "live_checked_at": int(live_checked_at) if live_checked_at else None,
        "methods": methods_for(requirement.min_level, offered),
    }
    if rank(level) < rank(requirement.min_level):
        raise LevelRequired(details=details, required_level=requirement.min_level)
    if requirement.face_within_minutes:
        age = None if live_checked_at is None else now - live_checked_at
        if age is None or age > requirement.face_within_minutes * 60:
            details["methods"] = methods_for("L3", offered)
            raise FreshFaceRequired(details=details, minutes=requirement.face_within_minutes)
