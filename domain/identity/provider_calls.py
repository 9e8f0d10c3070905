"""Calling a real-name provider: quota that can be given back, failures mapped to 502/503."""

from __future__ import annotations

import logging
from typing import Any

from core.ratelimit import RateLimiter
from domain.identity.errors import ProviderFailedError, ProviderUnavailableError
from integrations.realname.base import ProviderFailed, ProviderUnavailable

log = logging.getLogger(__name__)


class Quota:
    """Rate-limit hits that can be given back if the provider was never really used."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self._taken: list[tuple[str, str, str]] = []

    def take(self, name: str, ident: str, *, limit: int, window: int) -> None:
        try:
            member = self._limiter.hit(name, ident, limit=limit, window=window)
        except Exception:
            self.give_back()
            raise
        self._taken.append((name, ident, member))

    def give_back(self) -> None:
        for name, ident, member in self._taken:
            self._limiter.undo(name, ident, member)
        self._taken.clear()


def provider_call(quota: Quota, method: str, call: Any) -> Any:
    """Run one provider call; a provider failure gives the quota back (the citizen did not use
    the provider) and becomes the API's 503 or 502."""
    try:
        return call()
    except ProviderUnavailable as exc:
        quota.give_back()
        log.warning("identity provider unavailable", extra={"method": method, "provider_code": exc.code})
        raise ProviderUnavailableError(details={"method": method}) from exc
    except ProviderFailed as exc:
        quota.give_back()
        log.error("identity provider failed", extra={"method": method, "provider_code": exc.code})
        raise ProviderFailedError(details={"method": method}) from exc
