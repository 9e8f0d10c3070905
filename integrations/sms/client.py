"""SMS client (placeholder until implemented)."""

from __future__ import annotations

from typing import Any


class SmsClient:
    @classmethod
    def from_config(cls, cfg: Any) -> SmsClient:
        return cls()
