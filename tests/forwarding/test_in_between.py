"""Answers that are not the province's word: a gateway or firewall in front of it answering
unsigned. They may delay a submission, never end it for good or park it past its maximum age."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, Response, request

from domain.applications.models import ForwardingOutbox
from domain.forwarding.delivery import Forwarder
from integrations.province.client import ProvinceClient
from integrations.province.profile import load_profile
from integrations.simulator_server import ThreadedSimulator
from tests.forwarding.conftest import forward, fresh, get, submitted


@pytest.fixture
def gateway() -> Iterator[dict[str, Any]]:
    """An HTTP server answering every request with `answer` (status, headers), unsigned."""
    answer: dict[str, Any] = {"status": 400, "headers": {}}
    web = Flask("gateway")

    @web.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @web.route("/<path:path>", methods=["GET", "POST"])
    def anything(path: str) -> Response:
        return Response('{"code": "WAF"}', status=answer["status"], headers=answer["headers"])

    sim = ThreadedSimulator(web).start()
    answer["url"] = sim.url
    yield answer
    sim.stop()


def _forwarder(app: Any, services: Any, url: str) -> Forwarder:
    profile = load_profile(dict(app.config) | {"PROVINCE_BASE_URL": url})
    return Forwarder(
        profile=profile, client=ProvinceClient(profile), encryptor=services.encryptor, redis=None
    )


def _row(app_id: str) -> ForwardingOutbox:
    return fresh().query(ForwardingOutbox).filter_by(application_id=app_id).one()


def test_an_unsigned_refusal_is_retried_not_taken_as_the_provinces(app, client, zhang, services, gateway):
    case = submitted(client, zhang)
    fw = _forwarder(app, services, gateway["url"])
    assert forward(services, forwarder=fw) == ["retrying"]
    row = _row(case["id"])
    assert row.state == "retrying" and "400" in row.last_error
    assert get(client, zhang, case["id"]).get_json()["status"] == "submitted"


def test_a_huge_retry_after_waits_no_longer_than_the_rows_maximum_age(
    app, client, zhang, services, gateway, clock
):
    case = submitted(client, zhang)
    gateway.update(status=429, headers={"Retry-After": "999999999"})
    fw = _forwarder(app, services, gateway["url"])
    assert forward(services, forwarder=fw) == ["retrying"]
    row = _row(case["id"])
    deadline = row.created_at + timedelta(seconds=fw.profile.max_age + 1)
    assert row.next_attempt_at <= deadline  # not in 11,574 days
    clock.advance(fw.profile.max_age + 2)
    assert forward(services, forwarder=fw) == ["dead"]  # the last attempt failed too
    assert _row(case["id"]).state == "dead"


def test_a_signed_receipt_for_another_case_is_not_recorded(app, client, zhang, services, caplog):
    """The province's signed answer acknowledges a different case (a mix-up on its side): the
    citizen's case must not be shown received on the strength of it; it is sent again."""
    from integrations.province import signing
    from tests.forwarding.conftest import province_credentials

    creds = province_credentials(app)
    web = Flask("mixed-up-province")

    @web.route("/<path:path>", methods=["POST"])
    def intake(path: str) -> Response:
        sent = json.loads(request.get_data())
        answer = {"code": "0", "sblsh": "OTHER" + sent["sblsh"][5:], "version": sent["version"],
                  "receipt_no": "R-OTHER", "received_at": None}  # fmt: skip
        body = json.dumps(answer).encode()
        return Response(body, status=200, headers=signing.sign_response(creds, 200, body))

    sim = ThreadedSimulator(web).start()
    try:
        case = submitted(client, zhang)
        fw = _forwarder(app, services, sim.url)
        with caplog.at_level("ERROR"):
            assert forward(services, forwarder=fw) == ["retrying"]
    finally:
        sim.stop()
    row = _row(case["id"])
    assert row.state == "retrying" and row.receipt_no is None and "not the one sent" in row.last_error
    shown = get(client, zhang, case["id"]).get_json()
    assert shown["status"] == "submitted" and shown["province"]["receipt_no"] is None
    assert any(getattr(r, "alert", None) == "forwarding.receipt_mismatch" for r in caplog.records)
