"""Data-sharing exchange simulator ("统一受理、平台授权"): authorisations, queries, conditional records.

The production client (integrations/govdata/client.py) runs against it unchanged with
EXCHANGE_BASE_URL=http://127.0.0.1:9110/. Requests and answers are signed
(integrations/govdata/protocol.py). It answers from the seeded population
(integrations/govdata/population.py, GOVDATA_SIM_POPULATION people, seed GOVDATA_SIM_SEED).

API:
- POST /share/v1/authorizations  {subject {id_number, name}, datasets [...], purpose {application_id,
  service_code}, consent {record_id, given_at, text_version}, expires_at (unix s)}
  → {code "0", authorization_id}. The platform records the citizen's authorisation first; every
  query must quote it. 400 E4001 for an unknown dataset, a bad ID number, a missing consent.
- POST /share/v1/authorizations/revoke {authorization_id} → {code "0"}.
- POST /share/v1/query {authorization_id, dataset, subject {id_number}, purpose {application_id}}
  → {code "0", status "found" | "no_record" | "pending", record_id?, record?, retrieved_at,
  ticket?, expected_by?}. Refused with 403: E4031 unknown authorisation, E4032 revoked or
  expired, E4033 dataset not authorised, E4034 another person, E4035 another purpose.
  Conditional datasets (records.CONDITIONAL) answer "pending" with a ticket; the owning
  department approves after EXCHANGE_SIM_APPROVAL_SECONDS (0: only through the control API).
- POST /share/v1/tickets {authorization_id, ticket} → {status "pending" | "found" | "no_record" |
  "denied", record?, reason?}.

Control API (unsigned, /_sim/):
- GET  /_sim/stats                  {authorizations, queries, by_status {...}, refused {code: n},
                                     auth_failures {reason: n}}
- GET  /_sim/log                    the last 500 queries: authorisation, dataset, purpose, status
- POST /_sim/tickets/<ticket>       {decision "approve" | "deny", reason?}
- GET  /_sim/people?offset=&limit=  people of the population with the datasets that have records
- POST /_sim/reset                  forget authorisations, tickets, counts
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

from integrations.govdata import protocol
from integrations.govdata.codes import id_check_char
from integrations.govdata.population import DEFAULT_SEED, DEFAULT_SIZE, Population
from integrations.govdata.records import CONDITIONAL, RECORDS, record


class Exchange:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.population = Population(
            int(config.get("GOVDATA_SIM_POPULATION") or DEFAULT_SIZE),
            int(config.get("GOVDATA_SIM_SEED") or DEFAULT_SEED),
        )
        self.endpoint = protocol.SignedEndpoint(protocol.credentials(config))
        self.approval_seconds = float(config.get("EXCHANGE_SIM_APPROVAL_SECONDS", 30) or 0)
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.authorizations: dict[str, dict[str, Any]] = {}
            self.tickets: dict[str, dict[str, Any]] = {}
            self.counts: Counter[str] = Counter()
            self.refused: Counter[str] = Counter()
            self.log: deque[dict[str, Any]] = deque(maxlen=500)
            self.endpoint.auth_failures.clear()

    def refuse(self, code: str, message: str) -> Response:
        with self.lock:
            self.refused[code] += 1
        return self.endpoint.error(403, code, message)

    # --- authorisations ----------------------------------------------------------------------

    def authorize(self, body: dict[str, Any]) -> Response:
        subject, purpose, consent = body.get("subject"), body.get("purpose"), body.get("consent")
        datasets = body.get("datasets")
        if (
            not isinstance(subject, dict)
            or not _valid_id(subject.get("id_number"))
            or not subject.get("name")
        ):
            return self.endpoint.error(400, "E4001", "subject 须包含有效的身份证号和姓名")
        if not isinstance(datasets, list) or not datasets or any(d not in RECORDS for d in datasets):
            return self.endpoint.error(400, "E4001", "datasets 含未知的数据项")
        if not isinstance(purpose, dict) or not purpose.get("application_id"):
            return self.endpoint.error(400, "E4001", "purpose.application_id 必填")
        if not isinstance(consent, dict) or not consent.get("record_id") or not consent.get("given_at"):
            return self.endpoint.error(400, "E4001", "缺少本人授权记录（consent）")
        auth_id = "SQ" + uuid.uuid4().hex[:20].upper()
        with self.lock:
            self.authorizations[auth_id] = {
                "subject": subject["id_number"].upper(),
                "datasets": set(datasets),
                "application_id": purpose["application_id"],
                "service_code": purpose.get("service_code"),
                "expires_at": float(body.get("expires_at") or time.time() + 86400),
                "revoked": False,
            }
            self.counts["authorizations"] += 1
        return self.endpoint.answer(200, {"code": "0", "authorization_id": auth_id})

    def revoke(self, body: dict[str, Any]) -> Response:
        with self.lock:
            auth = self.authorizations.get(str(body.get("authorization_id")))
            if auth is not None:
                auth["revoked"] = True
        if auth is None:
            return self.endpoint.error(404, "E404", "授权不存在")
        return self.endpoint.answer(200, {"code": "0"})

    def _authorised(
        self, body: dict[str, Any], dataset: str | None
    ) -> tuple[dict[str, Any] | None, Response | None]:
        auth = self.authorizations.get(str(body.get("authorization_id")))
        if auth is None:
            return None, self.refuse("E4031", "未经授权：授权编号不存在")
        if auth["revoked"] or auth["expires_at"] < time.time():
            return None, self.refuse("E4032", "授权已撤回或已过期")
        if dataset is not None and dataset not in auth["datasets"]:
            return None, self.refuse("E4033", "该数据项不在本人授权范围内")
        subject = body.get("subject") if isinstance(body.get("subject"), dict) else {}
        if dataset is not None and str(subject.get("id_number", "")).upper() != auth["subject"]:
            return None, self.refuse("E4034", "查询对象与授权人不一致")
        purpose = body.get("purpose") if isinstance(body.get("purpose"), dict) else {}
        if dataset is not None and purpose.get("application_id") != auth["application_id"]:
            return None, self.refuse("E4035", "查询用途与授权用途不一致")
        return auth, None

    # --- queries -----------------------------------------------------------------------------

    def query(self, body: dict[str, Any]) -> Response:
        dataset = body.get("dataset")
        if dataset not in RECORDS:
            return self.endpoint.error(400, "E4001", "未知的数据项")
        auth, refusal = self._authorised(body, dataset)
        if refusal is not None:
            return refusal
        assert auth is not None
        now = time.time()
        answer: dict[str, Any] = {"code": "0", "retrieved_at": int(now)}
        if dataset in CONDITIONAL:
            ticket = "GD" + uuid.uuid4().hex[:16].upper()
            with self.lock:
                self.tickets[ticket] = {
                    "subject": auth["subject"],
                    "dataset": dataset,
                    "decision": None,
                    "auth": body["authorization_id"],
                    "due": now + self.approval_seconds,
                }
            answer |= {"status": "pending", "ticket": ticket, "review_days": 3, "approval_days": 10}
        else:
            answer |= self._record(auth["subject"], dataset)
        with self.lock:
            self.counts["queries"] += 1
            self.counts[answer["status"]] += 1
            self.log.append(
                {
                    "authorization_id": body["authorization_id"],
                    "dataset": dataset,
                    "application_id": auth["application_id"],
                    "status": answer["status"],
                    "at": int(now),
                }
            )
        return self.endpoint.answer(200, answer)

    def _record(self, id_number: str, dataset: str) -> dict[str, Any]:
        person = self.population.get(id_number)
        found = record(person, dataset) if person is not None else None
        if found is None:
            return {"status": "no_record"}
        return {
            "status": "found",
            "record_id": f"{dataset}:{person.id_number[-6:]}:{id_number[:6]}",
            "record": found,
        }  # type: ignore[union-attr]

    def ticket(self, body: dict[str, Any]) -> Response:
        auth, refusal = self._authorised(body, None)
        if refusal is not None:
            return refusal
        t = self.tickets.get(str(body.get("ticket")))
        if t is None or t["auth"] != body.get("authorization_id"):
            return self.endpoint.error(404, "E404", "工单不存在")
        decision = t["decision"]
        if decision is None and self.approval_seconds > 0 and time.time() >= t["due"]:
            decision = t["decision"] = "approve"
        if decision is None:
            return self.endpoint.answer(200, {"code": "0", "status": "pending", "ticket": body["ticket"]})
        if decision == "deny":
            return self.endpoint.answer(
                200, {"code": "0", "status": "denied", "reason": t.get("reason") or "部门未同意共享"}
            )
        return self.endpoint.answer(
            200, {"code": "0", "retrieved_at": int(time.time())} | self._record(t["subject"], t["dataset"])
        )


_ID = re.compile(r"[0-9]{17}[0-9Xx]")


def _valid_id(value: Any) -> bool:
    return (
        isinstance(value, str)
        and _ID.fullmatch(value) is not None
        and id_check_char(value[:17]) == value[17].upper()
    )


def create_simulator(config: Mapping[str, Any]) -> Flask:
    app = Flask("exchange_simulator")
    ex = Exchange(config)
    app.extensions["exchange"] = ex
    ep = ex.endpoint
    app.add_url_rule(
        "/share/v1/authorizations", "authorize", lambda: ep.handle(ex.authorize), methods=["POST"]
    )
    app.add_url_rule(
        "/share/v1/authorizations/revoke", "revoke", lambda: ep.handle(ex.revoke), methods=["POST"]
    )
    app.add_url_rule("/share/v1/query", "query", lambda: ep.handle(ex.query), methods=["POST"])
    app.add_url_rule("/share/v1/tickets", "ticket", lambda: ep.handle(ex.ticket), methods=["POST"])

    @app.get("/_sim/stats")
    def stats() -> Any:
        with ex.lock:
            by_status = {k: v for k, v in ex.counts.items() if k in ("found", "no_record", "pending")}
            return jsonify(
                authorizations=ex.counts["authorizations"],
                queries=ex.counts["queries"],
                by_status=by_status,
                refused=dict(ex.refused),
                auth_failures=dict(ep.auth_failures),
            )

    @app.get("/_sim/log")
    def log() -> Any:
        with ex.lock:
            return jsonify(queries=list(ex.log))

    @app.post("/_sim/tickets/<ticket>")
    def decide(ticket: str) -> Any:
        body = request.get_json(silent=True) or {}
        with ex.lock:
            t = ex.tickets.get(ticket)
            if t is None:
                return jsonify(error="no such ticket"), 404
            t["decision"] = "deny" if body.get("decision") == "deny" else "approve"
            t["reason"] = body.get("reason")
        return jsonify(ok=True, decision=t["decision"])

    @app.get("/_sim/people")
    def people() -> Any:
        offset, limit = int(request.args.get("offset", 0)), min(int(request.args.get("limit", 20)), 500)
        out = []
        for number in ex.population.ids[offset : offset + limit]:
            p = ex.population.people[number]
            out.append(
                {
                    "id_number": number,
                    "name": p.name,
                    "age": p.age,
                    "datasets": [d for d in RECORDS if record(p, d) is not None],
                }
            )
        return jsonify(people=out, total=len(ex.population.ids))

    @app.post("/_sim/reset")
    def reset() -> Any:
        ex.reset()
        return jsonify(ok=True)

    return app
