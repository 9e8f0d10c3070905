"""What forwarding needs, built on first use (the SM2 library and the profile load only then)."""

from __future__ import annotations

import threading
from typing import Any

from redis import Redis

from core.crypto import Encryptor


class ForwardingDeps:
    """The configured province profile, its client and a forwarder, shared by a process."""

    def __init__(self, config: dict[str, Any], encryptor: Encryptor, redis: Redis | None) -> None:
        self.config = config
        self.encryptor = encryptor
        self.redis = redis
        self._lock = threading.Lock()
        self._built: dict[str, Any] = {}

    def _get(self, name: str, build: Any) -> Any:
        if name not in self._built:
            with self._lock:
                if name not in self._built:
                    self._built[name] = build()
        return self._built[name]

    def profile(self) -> Any:
        from integrations.province.profile import load_profile

        return self._get("profile", lambda: load_profile(self.config))

    def profile_named(self, name: str | None) -> Any:
        """The profile for a callback path (None → the default one); None if not configured."""
        profile = self.profile()
        return profile if name in (None, profile.name) else None

    def client(self) -> Any:
        from integrations.province.client import ProvinceClient

        return self._get("client", lambda: ProvinceClient(self.profile()))

    def forwarder(self, *, lease: float | None = None, processes: int = 2) -> Any:
        from domain.forwarding.delivery import Forwarder

        return Forwarder(
            profile=self.profile(), client=self.client(), encryptor=self.encryptor, redis=self.redis,
            lease=lease or float(self.config.get("FORWARDER_LEASE", 60.0)), processes=processes,
        )  # fmt: skip
