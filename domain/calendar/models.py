"""Local calendar overrides: a region's own holidays and extra working days."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

NATIONWIDE = "000000"
KIND_HOLIDAY = "holiday"  # a local day off (e.g. a city's or autonomous region's own holiday)
KIND_WORKDAY = "workday"  # a local extra working day
KINDS = (KIND_HOLIDAY, KIND_WORKDAY)


class CalendarOverride(IdMixin, Base):
    __tablename__ = "calendar_overrides"
    # The unique index (region, day) also serves the range load of a due-date computation.
    __table_args__ = (UniqueConstraint("region", "day"),)

    region: Mapped[str] = mapped_column(String(6))  # GB/T 2260 code, "000000" for nationwide
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # An operator id, or "cli"/"tests" for system actors; no foreign key for that reason.
    created_by: Mapped[str | None] = mapped_column(String(64))
