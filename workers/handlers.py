"""Job name → handler. Handlers take keyword arguments (session, job_id, **payload).

Each handler calls one domain service or integration and raises core.errors.RetryableError
or PermanentError so the dispatcher knows whether to retry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# name → "module:function"; imported lazily so a worker only loads what it runs.
HANDLER_PATHS: dict[str, str] = {
    "system.probe": "workers.tasks.system:probe",
    "sms.send": "workers.tasks.sms:send_sms",
    "evaluation.forward": "workers.tasks.evaluations:forward",
    "calendar.follow": "workers.tasks.calendar_overrides:follow",
}


class HandlerRegistry(dict):
    """A mapping that imports handler functions on first use."""

    def get(self, name: str, default: Any = None) -> Callable[..., Any] | None:  # type: ignore[override]
        if name not in self and name in HANDLER_PATHS:
            module, _, func = HANDLER_PATHS[name].partition(":")
            self[name] = getattr(importlib.import_module(module), func)
        return super().get(name, default)


HANDLERS = HandlerRegistry()
