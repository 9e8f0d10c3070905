"""The SMS simulator's control API (/_sim/...): messages, counts, faults, clock, templates, receipts."""

from __future__ import annotations

import time
from dataclasses import asdict

from flask import Flask, Response, jsonify, request

from integrations.sms.sim_receipts import post_receipts, receipt_body
from integrations.sms.sim_state import MAINLAND, RECEIPTS_OFF, SimState, Template

_FAULT_KEYS = {"http_5xx_rate", "http_status", "internal_error_rate", "latency_ms", "errors"}


def register_control(app: Flask, state: SimState) -> None:
    """The /_sim/ routes (`python -m cli.simulators` adds GET /_sim/ with the simulator's docstring)."""

    @app.route("/_sim/receipts", methods=["GET", "POST"])
    def receipts() -> Response | tuple:
        """GET the report settings; POST {mode, status, copies, delay_ms} to change them, or
        {serial_no, status} to send one report now (to the configured callback URL)."""
        body = request.get_json(silent=True) or {}
        if request.method == "POST" and body.get("serial_no"):
            with state.lock:
                sent = next((m for m in state.messages if m["serial_no"] == body["serial_no"]), None)
            if sent is None:
                return jsonify({"error": "unknown serial_no"}), 404
            status = {"PhoneNumber": sent["phone"], "SerialNo": sent["serial_no"],
                      "SessionContext": sent["session_context"]}  # fmt: skip
            post_receipts(state.receipt_url, [receipt_body(status, str(body.get("status") or "SUCCESS"))])
            return jsonify({"sent": True})
        if request.method == "POST":
            mode, status = body.get("mode", "off"), body.get("status", "SUCCESS")
            if mode not in ("off", "after", "before") or status not in ("SUCCESS", "FAIL"):
                return jsonify({"error": "mode off|after|before, status SUCCESS|FAIL"}), 400
            with state.lock:
                state.receipts = RECEIPTS_OFF | {k: body[k] for k in RECEIPTS_OFF if k in body}
        with state.lock:
            return jsonify(state.receipts | {"url": state.receipt_url})

    @app.get("/_sim/messages")
    def messages() -> Response:
        phone = (request.args.get("phone") or "").replace(" ", "")
        match = MAINLAND.match(phone)
        wanted = f"+86{match.group(1)}" if match else phone
        with state.lock:
            rows = [m for m in state.messages if not phone or m["phone"] == wanted]
        return jsonify({"messages": rows})

    @app.get("/_sim/calls")
    def calls() -> Response:
        with state.lock:
            by_action = {k.split(":", 1)[1]: v for k, v in state.calls.items() if k.startswith("action:")}
            return jsonify({
                "total": state.calls["total"], "ok": state.calls["ok"], "http_5xx": state.calls["http_5xx"],
                "by_action": by_action, "errors": dict(state.errors), "statuses": dict(state.statuses),
            })  # fmt: skip

    @app.route("/_sim/faults", methods=["GET", "POST"])
    def faults() -> Response | tuple:
        if request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or set(body) - _FAULT_KEYS:
                return jsonify({"error": f"body must be an object with keys from {sorted(_FAULT_KEYS)}"}), 400
            with state.lock:
                state.faults.update(body)
                state.faults["errors"] = list(state.faults["errors"])
        with state.lock:
            return jsonify(state.faults)

    @app.post("/_sim/advance")
    def advance() -> Response:
        body = request.get_json(silent=True) or {}
        try:
            seconds = float(body.get("seconds", 0))
            to = None if body.get("to") is None else float(body["to"])
        except (TypeError, ValueError):
            return jsonify({"error": "seconds and to must be numbers"}), 400
        with state.lock:
            state.offset = state.offset + seconds if to is None else to - time.time()
            return jsonify({"offset": state.offset})

    @app.put("/_sim/templates/<template_id>")
    def put_template(template_id: str) -> Response | tuple:
        body = request.get_json(silent=True) or {}
        with state.lock:
            current = state.templates.get(template_id)
            content = body.get("content") or (current.content if current else None)
            if not content:
                return jsonify({"error": "content is required for a new template"}), 400
            state.templates[template_id] = Template(
                id=template_id,
                content=content,
                approved=bool(body.get("approved", True)),
                kind=body.get("kind") or (current.kind if current else "notice"),
            )
            return jsonify(asdict(state.templates[template_id]))

    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"ok": True})
