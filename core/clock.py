"""One source of time, so tests can move the clock (rate limits, expiry, backoff)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

# China keeps one time zone: "today" for validity dates, due dates and working days is Beijing's.
BEIJING = ZoneInfo("Asia/Shanghai")


class SystemClock:
    """Wall-clock time in UTC."""

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)


class FrozenClock(SystemClock):
    """A clock that only moves when told to; for tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._t = (start or datetime.now(tz=UTC)).timestamp()

    def time(self) -> float:
        return self._t

    def advance(self, seconds: float = 0, **kwargs: float) -> None:
        self._t += seconds + timedelta(**kwargs).total_seconds()


_clock: SystemClock = SystemClock()


def now() -> datetime:
    """Current UTC time (timezone-aware)."""
    return _clock.now()


def timestamp() -> float:
    """Current UNIX time in seconds."""
    return _clock.time()


def local_date(when: datetime | None = None) -> date:
    """The Beijing calendar date at `when` (default: now). A certificate valid until the 5th is
    expired at 00:00 Beijing time on the 6th, which is 16:00 UTC on the 5th."""
    return (when or now()).astimezone(BEIJING).date()


def use(clock: SystemClock) -> SystemClock:
    """Install `clock` process-wide and return the previous one."""
    global _clock
    previous, _clock = _clock, clock
    return previous
