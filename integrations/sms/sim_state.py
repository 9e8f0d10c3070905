"""The SMS simulator's memory: templates, sent messages, per-number windows, counters, faults.

One lock guards it all (the simulator is served by a threaded server); `reset` returns it to the
templates registered from the configuration.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta, timezone
from typing import Any

OTP_CONTENT = "您的验证码为{1}，{2}分钟内有效，请勿泄露于他人。如非本人操作，请忽略本短信。"
NOTICE_CONTENT = "您办理的{1}（受理编号{2}）{3}，详情请在一网通办查看。"
CLOSED_CONTENT = "您的一网通办账号已于{1}注销。如非本人操作，请拨打12345政务服务便民热线。"
BEIJING = timezone(timedelta(hours=8))
MAINLAND = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
# mode: off | after (a report shortly after the answer) | before (the report arrives before
# SendSms answers: out of order); status SUCCESS or FAIL; copies: how often each report is sent.
RECEIPTS_OFF = {"mode": "off", "status": "SUCCESS", "copies": 1, "delay_ms": 50}


@dataclass
class Template:
    id: str
    content: str
    approved: bool = True
    kind: str = "notice"  # "otp": Tencent only accepts 0-6 digits for the code variable

    @property
    def param_count(self) -> int:
        return len(set(re.findall(r"\{(\d+)\}", self.content)))


def _default_faults() -> dict[str, Any]:
    return {
        "http_5xx_rate": 0.0,
        "http_status": 503,
        "internal_error_rate": 0.0,
        "latency_ms": 0,
        "errors": [],
    }


@dataclass
class SimState:
    secrets: dict[str, str]
    app_ids: set[str]
    signs: set[str]
    base_templates: dict[str, Template]
    templates: dict[str, Template] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    calls: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    faults: dict[str, Any] = field(default_factory=_default_faults)
    offset: float = 0.0
    # Bumped by reset(): a request that began before a reset (e.g. one held by injected
    # latency) must not leave its message in the new, empty state.
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=random.Random)
    # Delivery reports (状态回执): where to POST them and when.
    receipt_url: str = ""
    receipts: dict[str, Any] = field(default_factory=lambda: dict(RECEIPTS_OFF))
    base_receipts: dict[str, Any] = field(default_factory=lambda: dict(RECEIPTS_OFF))

    def reset(self) -> None:
        with self.lock:
            self.templates = {k: Template(**asdict(v)) for k, v in self.base_templates.items()}
            self.messages.clear()
            self.history.clear()
            self.calls.clear()
            self.errors.clear()
            self.statuses.clear()
            self.faults = _default_faults()
            self.offset = 0.0
            self.receipts = dict(self.base_receipts)
            self.generation += 1

    def sim_now(self) -> float:
        return time.time() + self.offset
