"""Data for bench.appointments, run in its own process with the benchmark's environment.

`python -m bench.appointments_data OUT_PREFIX CITIZENS THREADS` publishes nothing: it adds a hall
open every day 08:00-20:00 with PLACES places per 30-minute slot for one item, makes its slots for
the next working days (through the service, as the first GET does), creates CITIZENS citizens
with app sessions (accounts + tokens through the services), and writes "SLOT_ID TOKEN" lines to
OUT_PREFIX.0 … OUT_PREFIX.(THREADS-1): each citizen books one slot, the citizens spread over
the slots round-robin (at most PLACES per slot). Prints
a JSON line {hall_id, day, slots}.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

ITEM = "11440100007504956C3000110001000"
WINDOWS = 40  # × 2 places per window and slot
PLACES = WINDOWS * 2
EVERY_DAY = {str(d): [["08:00", "20:00"]] for d in range(1, 8)}


def main() -> None:
    out_prefix, citizens, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    from core import clock
    from core.db import db
    from domain.accounts import service as accounts
    from domain.appointments import slots as appointments
    from domain.appointments.models import Hall
    from domain.auth import sessions
    from factory import create_app

    app = create_app()
    with app.app_context():
        svc = app.extensions["yiwang"]
        session = db.session()
        hall = Hall(
            name="基准测试大厅",
            address="基准路 1 号",
            region="440106",
            opening_hours=EVERY_DAY,
            windows=WINDOWS,
            service_codes=[ITEM],
            slot_minutes=30,
            capacity_per_window=2,
            created_at=clock.now(),
        )
        session.add(hall)
        session.commit()
        slot_ids: list[str] = []
        days: list[str] = []
        day = clock.now().astimezone(appointments.BEIJING).date() + timedelta(days=1)
        horizon = day + timedelta(days=60)
        while len(slot_ids) * PLACES < citizens:
            if day > horizon:
                raise SystemExit(f"not enough bookable slots for {citizens} citizens")
            try:
                listed = appointments.slots(session, service_code=ITEM, hall_id=hall.id, day=day)
                slot_ids += [s.id for s in listed]
                days.append(day.isoformat())
            except Exception:  # closed that day
                pass
            day += timedelta(days=1)
        files = [open(f"{out_prefix}.{i}", "w") for i in range(threads)]
        os.chmod(f"{out_prefix}.0", 0o600)
        for i in range(citizens):
            account, _ = accounts.login_phone(
                session, encryptor=svc.encryptor, hasher=svc.hasher, phone=f"137{i:08d}"
            )
            pair = sessions.start_session(
                session,
                tokens=svc.tokens,
                policy=svc.citizen_policy,
                account=account,
                channel="app",
                device_label="bench",
            )
            # Spread over the slots, as citizens pick different times (the hot-slot case is the
            # concurrency test's: tests/appointments/test_booking.py).
            files[i % threads].write(f"{slot_ids[i % len(slot_ids)]} {pair.access_token}\n")
        for f in files:
            f.close()
        print(json.dumps({"hall_id": hall.id, "day": days[0], "slots": len(slot_ids)}))


if __name__ == "__main__":
    main()
