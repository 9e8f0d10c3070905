"""JSON structured logs with personal data redacted."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from core.masking import redact_text

_SENSITIVE_KEYS = {
    "phone", "mobile", "id_number", "cert_no", "name", "cert_name", "code", "otp", "password",
    "totp", "token", "access_token", "refresh_token", "session_key", "secret", "authorization",
}  # fmt: skip
_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _scrub(value: Any, key: str = "") -> Any:
    if key.lower() in _SENSITIVE_KEYS:
        return "[redacted]"
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int) and not isinstance(value, bool):  # a phone number kept as a number
        text = str(value)
        return redact_text(text) if redact_text(text) != text else value
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields are included, sensitive ones redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = _scrub(value, key)
        if record.exc_info:
            entry["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Plain lines for a terminal (LOG_JSON=0), redacted like the JSON ones: the message and any
    traceback (extra fields are not printed in this form)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def configure_logging(level: str = "INFO", json_format: bool = True) -> None:
    """Send every log record to stderr as redacted JSON (or redacted plain text when
    json_format=False)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(max(logging.WARNING, root.level))
