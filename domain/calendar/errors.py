"""Errors of the working-day calendar."""

from __future__ import annotations

from datetime import date
from typing import Any

from core.errors import AppError


class CalendarOutOfRange(AppError):
    # A wrong legal deadline is worse than none: beyond the published holiday arrangements we
    # refuse instead of guessing from weekends.
    status = 422
    code = "calendar.out_of_range"
    message_zh = (
        "节假日安排仅覆盖 {first_supported} 至 {last_supported}，无法判断 {day} 是否为工作日，请更新日历数据"
    )
    message_en = (
        "Holiday arrangements are known only from {first_supported} to {last_supported}; cannot tell "
        "whether {day} is a working day. Update the calendar data"
    )

    def __init__(self, *, day: date, first_supported: date, last_supported: date, **kw: Any) -> None:
        super().__init__(
            details={
                "day": day.isoformat(),
                "first_supported": first_supported.isoformat(),
                "last_supported": last_supported.isoformat(),
            },
            day=day.isoformat(),
            first_supported=first_supported.isoformat(),
            last_supported=last_supported.isoformat(),
            **kw,
        )


class InvalidRegion(AppError):
    status = 422
    code = "calendar.region_invalid"
    message_zh = "行政区划代码须为 6 位 GB/T 2260 代码（全国为 000000）"
    message_en = "The region must be a 6-digit GB/T 2260 code (000000 for nationwide)"


class InvalidOverride(AppError):
    status = 422
    code = "calendar.override_invalid"
    message_zh = "日历调整有误：{problem}"
    message_en = "Invalid calendar override: {problem}"


class InvalidTimeLimit(AppError):
    status = 422
    code = "calendar.time_limit_invalid"
    message_zh = "时限有误：{problem}"
    message_en = "Invalid time limit: {problem}"


class OverrideExists(AppError):
    status = 409
    code = "calendar.override_exists"
    message_zh = "该地区在 {day} 已有日历调整"
    message_en = "This region already has an override on {day}"


class OverrideNotFound(AppError):
    status = 404
    code = "calendar.override_not_found"
    message_zh = "未找到该日历调整"
    message_en = "Calendar override not found"
