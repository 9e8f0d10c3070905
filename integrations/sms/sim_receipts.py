"""The SMS simulator's delivery reports (状态回执), POSTed in Tencent's callback format."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from integrations.sms.sim_state import BEIJING, SimState


def receipt_body(status: dict[str, Any], report: str) -> list[dict[str, Any]]:
    """Tencent's delivery-report callback body for one sent message."""
    ok = report == "SUCCESS"
    return [{
        "user_receive_time": datetime.now(tz=BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        "nationcode": "86", "mobile": status["PhoneNumber"].removeprefix("+86"),
        "report_status": report, "errmsg": "DELIVRD" if ok else "MK:0005",
        "description": "用户短信送达成功" if ok else "用户手机关机或停机", "sid": status["SerialNo"],
        "ext": {"session_context": status.get("SessionContext", "")},
    }]  # fmt: skip


def post_receipts(url: str, bodies: list[list[dict[str, Any]]]) -> None:
    """POST each report body to `url` once, ignoring transport errors."""
    import httpx

    for body in bodies:
        try:
            httpx.post(url, json=body, timeout=5)
        except httpx.HTTPError:
            pass  # the real platform retries a few times, then gives up; so does a test


def report(state: SimState, statuses: list[dict[str, Any]], receipts: dict[str, Any]) -> None:
    """Send the reports for a SendSms answer as the `receipts` settings say (now or shortly after)."""
    if receipts["mode"] == "off" or not state.receipt_url:
        return
    bodies = [receipt_body(s, receipts["status"]) for s in statuses if s["Code"] == "Ok"]
    bodies = [b for b in bodies for _ in range(int(receipts["copies"]))]
    if receipts["mode"] == "before":
        post_receipts(state.receipt_url, bodies)
        return

    def later() -> None:
        time.sleep(float(receipts["delay_ms"]) / 1000)
        post_receipts(state.receipt_url, bodies)

    threading.Thread(target=later, daemon=True).start()
