"""Structured logs never carry personal data."""

from __future__ import annotations

import json
import logging

from core.logging import JsonFormatter, TextFormatter


def _format(msg, **extra):
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, (), None)
    for k, v in extra.items():
        setattr(record, k, v)
    return json.loads(JsonFormatter().format(record))


def test_phone_and_id_numbers_in_messages_are_masked():
    out = _format("login for 13812345678 with id 110101199003074514")
    assert "13812345678" not in out["msg"] and "138****5678" in out["msg"]
    assert "110101199003074514" not in out["msg"] and "110***********4514" in out["msg"]


def test_a_phone_kept_as_a_number_in_an_extra_field_is_masked():
    out = _format("x", mobile_no=13812345678, attempts=3, ok=True)
    assert out["mobile_no"] == "138****5678" and out["attempts"] == 3 and out["ok"] is True


def test_sensitive_extra_fields_are_redacted():
    out = _format("x", phone="13812345678", session_key="abc", payload={"code": "123456", "ok": 1})
    assert out["phone"] == "[redacted]" and out["session_key"] == "[redacted]"
    assert out["payload"] == {"code": "[redacted]", "ok": 1}


def test_access_log_of_a_real_request_holds_no_token(app, client, citizen, caplog):
    app.config["ACCESS_LOG"] = True
    try:
        with caplog.at_level(logging.INFO, logger="yiwang.access"):
            client.get("/v1/me?ref=13812345678", headers=citizen["headers"])
    finally:
        app.config["ACCESS_LOG"] = False
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "request" in text and citizen["account_id"] in text
    assert citizen["access_token"] not in text and "13812345678" not in text


def test_plain_text_logs_are_redacted_too():
    """LOG_JSON=0 (a terminal) prints plain lines: the same numbers are masked there, in the
    message and in a traceback that quotes them."""
    try:
        raise ValueError("no record for 110101199003074514")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "sms to %s", ("13812345678",), sys.exc_info()
        )
    line = TextFormatter().format(record)
    assert "138****5678" in line and "110***********4514" in line
    assert "13812345678" not in line and "110101199003074514" not in line


def test_a_database_error_never_carries_the_statements_values(app) -> None:
    """Errors are logged with their traceback: the values bound to a statement (a phone number, a
    password hash) must not be in them."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from core.db import db

    session = db.session()
    with pytest.raises(DBAPIError) as raised:
        session.execute(text("SELECT no_such_column FROM accounts WHERE id = :x"), {"x": "13812345678"})
    session.rollback()
    assert "13812345678" not in str(raised.value)
