"""WeChat mini-program server API client (placeholder until implemented)."""

from __future__ import annotations

from typing import Any


class WechatClient:
    @classmethod
    def from_config(cls, cfg: Any, *, redis: Any) -> WechatClient:
        return cls()
