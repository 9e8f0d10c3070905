"""The outbox's pure helpers: how many attempts span a retry period, what an erased payload keeps."""

from __future__ import annotations

from datetime import UTC


def test_a_retry_span_is_counted_for_any_backoff_settings() -> None:
    """A short backoff cap (a staging setup) needs many attempts to span an hour: counted, not
    an OverflowError that fails the account closure asking for it; bounded all the same."""
    from core.outbox.service import MAX_SPANNING_ATTEMPTS, OutboxSettings, attempts_spanning, backoff_seconds

    default = OutboxSettings()
    n = attempts_spanning(3600, default)
    assert (
        sum(backoff_seconds(k, default, 0.0) for k in range(1, n))
        >= 3600
        > sum(backoff_seconds(k, default, 0.0) for k in range(1, n - 1))
    )
    for cap in (10.0, 5.0, 0.5):
        assert attempts_spanning(3600, OutboxSettings(backoff_cap=cap)) == MAX_SPANNING_ATTEMPTS
    assert backoff_seconds(5000, OutboxSettings(backoff_cap=5.0), 0.5) == 3.75


def test_a_job_naming_no_personal_data_is_not_marked_erased() -> None:
    from datetime import datetime

    from core.outbox.models import SCRUB_KEY, SCRUBBED_AT_KEY, scrubbed

    at = datetime(2026, 12, 7, tzinfo=UTC)
    assert scrubbed({"x": 1, SCRUB_KEY: []}, at) == {"x": 1}
    assert scrubbed({"x": 1, "data": "enc", SCRUB_KEY: ["data"]}, at) == {
        "x": 1,
        SCRUBBED_AT_KEY: at.isoformat(),
    }
