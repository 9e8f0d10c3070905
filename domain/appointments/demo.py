"""Demo halls for the embedded run (`flask seed`): idempotent by name."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from domain.appointments.models import Hall

WEEKDAYS = {str(d): [["09:00", "12:00"], ["13:30", "17:00"]] for d in range(1, 6)}
SATURDAY_MORNING = {"6": [["09:00", "12:00"]]}
DEMO_HALLS = (
    ("广州市政务服务中心", "广州市天河区天河北路 28 号", "440106", WEEKDAYS | SATURDAY_MORNING, 12),
    ("越秀区政务服务中心", "广州市越秀区府前路 1 号", "440104", WEEKDAYS, 6),
)
DEMO_ITEMS = (
    "11440100007504956C3000110001000",  # 社会保障卡申领
    "11440100007502318X3000105101000",  # 普通护照签发
    "11440100007502908Y3000106002000",  # 内地居民离婚登记
)


def seed_halls(session: Session) -> int:
    """Add the demo halls that are missing; how many were added. Commits."""
    have = set(session.scalars(select(Hall.name)))
    added = 0
    for name, address, region, hours, windows in DEMO_HALLS:
        if name in have:
            continue
        session.add(Hall(name=name, address=address, region=region, opening_hours=hours, windows=windows,
                         service_codes=list(DEMO_ITEMS), slot_minutes=30, capacity_per_window=2,
                         created_at=clock.now()))  # fmt: skip
        added += 1
    session.commit()
    return added
