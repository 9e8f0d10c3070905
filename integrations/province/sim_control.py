"""The province simulator's control API (/_sim/...): counters, cases, stage moves, faults."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from integrations.province.sim_state import RESULT_CODES


def register_control(app: Flask, province: Any) -> None:
    """The /_sim/ routes (`python -m cli.simulators` adds GET /_sim/ with the module's docstring)."""
    st = province.state

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    @app.post("/_sim/reset")
    def reset() -> Any:
        st.reset()
        st.set_faults(province.initial_faults)
        return jsonify(ok=True)

    @app.get("/_sim/stats")
    def stats() -> Any:
        with st.lock:
            return jsonify(
                cases=len(st.cases), received=st.counts["received"], duplicates=st.counts["duplicates"],
                requests=st.counts["requests"], by_status=dict(st.by_status), resets=st.counts["resets"],
                timeouts=st.counts["timeouts"], rate_limited=st.counts["rate_limited"],
                auth_failures=dict(st.auth_failures), callbacks=dict(st.callbacks),
            )  # fmt: skip

    @app.get("/_sim/evaluations")
    def evaluations() -> Any:
        """好差评 pushes received, by evaluation id."""
        with province.state.lock:
            return jsonify({"evaluations": list(province.state.evaluations.values())})

    @app.get("/_sim/cases")
    def cases() -> Any:
        with st.lock:
            return jsonify(
                cases={
                    s: {"stage": c.stage, "versions": sorted({r["version"] for r in c.receipts.values()}),
                        "duplicates": c.duplicates}
                    for s, c in st.cases.items()
                }
            )  # fmt: skip

    @app.get("/_sim/cases/<sblsh>")
    def case(sblsh: str) -> Any:
        with st.lock:
            found = st.cases.get(sblsh)
            return (jsonify(found.view()), 200) if found else (jsonify(error="unknown case"), 404)

    @app.post("/_sim/cases/<sblsh>/<action>")
    def move(sblsh: str, action: str) -> Any:
        from integrations.province.simulator import CONTROL_STAGES

        stage = CONTROL_STAGES.get(action)
        if stage is None:
            return jsonify(error=f"unknown action {action}"), 404
        data = body()
        extra: dict[str, Any] = {"reason": data.get("reason")}
        if stage == "supplement":
            extra.update(materials=list(data.get("materials") or []), fields=list(data.get("fields") or []))
        if stage == "completed":
            result = data.get("result", "approved")
            if result not in RESULT_CODES:
                return jsonify(error="result must be approved or denied"), 400
            extra["result_code"] = RESULT_CODES[result]
        status, out = province.move(sblsh, stage, extra, send=not data.get("drop_callback"))
        return jsonify(out), status

    @app.post("/_sim/events/<sblsh>/resend")
    def resend(sblsh: str) -> Any:
        seq = body().get("seq")
        with st.lock:
            found = st.cases.get(sblsh)
            events = [e for e in (found.events if found else []) if e["seq"] == seq]
            if not events:
                return jsonify(error="no such event"), 404
            st._push(events[0])
        return jsonify(events[0])

    @app.post("/_sim/callback_url")
    def callback_url() -> Any:
        url = body().get("url")
        if not isinstance(url, str) or not url.startswith("http"):
            return jsonify(error="url required"), 400
        with st.lock:
            st.callback_url = url
        return jsonify(url=url)

    @app.route("/_sim/faults", methods=["GET", "POST"])
    def faults() -> Any:
        if request.method == "GET":
            with st.lock:
                return jsonify(st.faults)
        try:
            return jsonify(st.set_faults(body()))
        except KeyError as exc:
            return jsonify(error=f"unknown fault {exc}"), 400
