"""E-certificate library simulator (电子证照库): list, detail and file of a citizen's certificates.

The production client (integrations/govdata/client.py) runs against it unchanged with
ECERT_BASE_URL=http://127.0.0.1:9111/. Signed both ways (integrations/govdata/protocol.py).
Certificates come from the seeded population (integrations/govdata/certificates.py): GB/T 36901
identifiers with their MOD 37,36 check character, states 01 有效 / 02 暂扣 / 03 撤销 / 04 注销 /
05 失效 / 07 吊销, validity dates.

API:
- POST /ecert/v1/certificates/list    {holder {id_number, name}, purpose}
  → {code "0", certificates [{identifier, type_code, type_name, issuer, holder_name,
  holder_id_number, number, issued_on, valid_until, state, state_name}]}: what the person holds,
  and the birth and vaccination certificates of their minor children. A name that does not match
  the ID number → 403 E4034.
- POST /ecert/v1/certificates/detail  {identifier, holder {id_number}, purpose}
  → {code "0", certificate {... , data {...}}}. 400 E4002 for an identifier whose check
  character is wrong; 404 E404 unknown; 403 E4034 when the holder is neither holder nor guardian.
- POST /ecert/v1/certificates/file    {identifier, holder {id_number}, format "pdf" | "ofd"}
  → {code "0", media_type, content (base64), sha256}.

Control API (unsigned, /_sim/):
- GET  /_sim/stats                              {lists, details, files, refused {code: n}, auth_failures}
- GET  /_sim/people/<id_number>/certificates    the person's certificates (as the list call)
- POST /_sim/certificates/<identifier>/state    {state "01".."07"}: suspend, revoke, cancel ...
- POST /_sim/reset                              every state back to the seed, counts cleared
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

from integrations.govdata import protocol
from integrations.govdata.certificates import STATES, Certificate, CertificateRegistry
from integrations.govdata.codes import ecert_identifier_problem
from integrations.govdata.documents import ofd_bytes, pdf_bytes
from integrations.govdata.population import DEFAULT_SEED, DEFAULT_SIZE, Population


class Library:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.population = Population(
            int(config.get("GOVDATA_SIM_POPULATION") or DEFAULT_SIZE),
            int(config.get("GOVDATA_SIM_SEED") or DEFAULT_SEED),
        )
        self.endpoint = protocol.SignedEndpoint(protocol.credentials(config))
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.registry = CertificateRegistry(self.population)
            self.counts: Counter[str] = Counter()
            self.refused: Counter[str] = Counter()
            self.endpoint.auth_failures.clear()

    def refuse(self, status: int, code: str, message: str) -> Response:
        with self.lock:
            self.refused[code] += 1
        return self.endpoint.error(status, code, message)

    def list(self, body: dict[str, Any]) -> Response:
        holder = body.get("holder") if isinstance(body.get("holder"), dict) else {}
        id_number = str(holder.get("id_number", "")).upper()
        if not id_number or not holder.get("name"):
            return self.refuse(400, "E4001", "holder 须包含身份证号和姓名")
        person = self.population.get(id_number)
        if person is not None and holder["name"] != person.name:
            return self.refuse(403, "E4034", "持证人姓名与身份证号不一致")
        with self.lock:
            self.counts["lists"] += 1
            certs = [c.summary() for c in self.registry.of(id_number)]
        return self.endpoint.answer(200, {"code": "0", "certificates": certs})

    def _one(self, body: dict[str, Any]) -> tuple[Certificate | None, Response | None]:
        identifier = str(body.get("identifier", ""))
        if ecert_identifier_problem(identifier):
            return None, self.refuse(400, "E4002", "证照标识格式或校验位错误")
        cert = self.registry.by_id.get(identifier)
        if cert is None:
            return None, self.refuse(404, "E404", "证照不存在")
        holder = body.get("holder") if isinstance(body.get("holder"), dict) else {}
        if str(holder.get("id_number", "")).upper() not in (cert.holder_id, *cert.guardians):
            return None, self.refuse(403, "E4034", "无权查看他人证照")
        return cert, None

    def detail(self, body: dict[str, Any]) -> Response:
        cert, refusal = self._one(body)
        if refusal is not None:
            return refusal
        assert cert is not None
        with self.lock:
            self.counts["details"] += 1
        return self.endpoint.answer(200, {"code": "0", "certificate": cert.summary() | {"data": cert.data}})

    def file(self, body: dict[str, Any]) -> Response:
        cert, refusal = self._one(body)
        if refusal is not None:
            return refusal
        assert cert is not None
        fmt = body.get("format", "pdf")
        if fmt not in ("pdf", "ofd"):
            return self.refuse(400, "E4001", "format 须为 pdf 或 ofd")
        content = pdf_bytes(cert) if fmt == "pdf" else ofd_bytes(cert)
        with self.lock:
            self.counts["files"] += 1
        return self.endpoint.answer(
            200,
            {
                "code": "0",
                "media_type": "application/pdf" if fmt == "pdf" else "application/ofd",
                "content": base64.b64encode(content).decode(),
                "sha256": hashlib.sha256(content).hexdigest(),
            },
        )


def create_simulator(config: Mapping[str, Any]) -> Flask:
    app = Flask("ecert_simulator")
    lib = Library(config)
    app.extensions["ecert"] = lib
    ep = lib.endpoint
    app.add_url_rule("/ecert/v1/certificates/list", "list", lambda: ep.handle(lib.list), methods=["POST"])
    app.add_url_rule(
        "/ecert/v1/certificates/detail", "detail", lambda: ep.handle(lib.detail), methods=["POST"]
    )
    app.add_url_rule("/ecert/v1/certificates/file", "file", lambda: ep.handle(lib.file), methods=["POST"])

    @app.get("/_sim/stats")
    def stats() -> Any:
        with lib.lock:
            return jsonify(
                lists=lib.counts["lists"],
                details=lib.counts["details"],
                files=lib.counts["files"],
                refused=dict(lib.refused),
                auth_failures=dict(ep.auth_failures),
            )

    @app.get("/_sim/people/<id_number>/certificates")
    def of_person(id_number: str) -> Any:
        with lib.lock:
            return jsonify(certificates=[c.summary() for c in lib.registry.of(id_number)])

    @app.post("/_sim/certificates/<identifier>/state")
    def set_state(identifier: str) -> Any:
        state = (request.get_json(silent=True) or {}).get("state")
        with lib.lock:
            cert = lib.registry.by_id.get(identifier)
            if cert is None or state not in STATES:
                return jsonify(error="unknown certificate or state"), 404 if cert is None else 400
            cert.state = state
        return jsonify(ok=True, state=state)

    @app.post("/_sim/reset")
    def reset() -> Any:
        lib.reset()
        return jsonify(ok=True)

    return app
