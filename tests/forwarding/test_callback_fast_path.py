"""The callbacks' fast path answers exactly as the Flask view, and hands everything else to it."""

from __future__ import annotations

import json

from werkzeug.test import Client

from api.callbacks_fast_path import CallbackFastPath
from integrations.province import signing
from tests.forwarding.conftest import apply_events, event, get, province_credentials, submitted

PATH = "/v1/platform/callbacks"


class Spy:
    """The WSGI app behind the fast path (Flask), counting the requests handed to it."""

    def __init__(self, app) -> None:
        self.app, self.calls = app, 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.app(environ, start_response)


def _behind_fast_path(app):
    """The WSGI app the callbacks' fast path hands requests to (Flask)."""
    wsgi = app.wsgi_app
    while not isinstance(wsgi, CallbackFastPath):
        wsgi = wsgi.app
    return wsgi.app


def _post(wsgi, app, ev: dict, **extra_headers):
    body = json.dumps(ev, ensure_ascii=False).encode()
    headers = signing.sign_request(province_credentials(app), "POST", PATH, body)
    headers |= {"Content-Type": "application/json", "X-Request-ID": "req-fast-path-01"} | extra_headers
    return Client(wsgi).post(PATH, data=body, headers=headers)


def test_an_event_gets_the_views_answer_without_flask(app, client, zhang, services, province):
    case = submitted(client, zhang)
    flask_only = _behind_fast_path(app)
    spy = Spy(flask_only)
    fast = CallbackFastPath(spy, app)

    via_flask = _post(flask_only, app, event(case["case_number"], 1, "received"))
    via_fast = _post(fast, app, event(case["case_number"], 2, "accepted", code="1"))
    assert spy.calls == 0
    assert via_fast.status_code == via_flask.status_code == 200
    assert via_fast.get_data() == via_flask.get_data() == b'{"code":"0","result":"stored"}\n'
    for name in ("Content-Type", "X-Request-ID", "Cache-Control", "X-Content-Type-Options"):
        assert via_fast.headers[name] == via_flask.headers[name], name
    assert via_fast.headers["X-Request-ID"] == "req-fast-path-01"

    apply_events(app)
    assert get(client, zhang, case["id"]).get_json()["status"] == "accepted"
    again = _post(fast, app, event(case["case_number"], 2, "accepted", code="1"))
    assert again.get_json() == {"code": "0", "result": "duplicate"} and spy.calls == 0


def test_faults_are_answered_by_the_view_and_a_recorded_nonce_is_not_a_replay(app, client, zhang, province):
    case = submitted(client, zhang)
    spy = Spy(_behind_fast_path(app))
    fast = CallbackFastPath(spy, app)

    # Past the signature and nonce, the case is unknown: the view says so (not "replayed").
    unknown = _post(fast, app, event("NO-SUCH-CASE", 1, "received"))
    assert spy.calls == 1
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "platform.unknown_case"

    junk = _post(fast, app, {"sblsh": case["case_number"], "seq": "two"})
    assert spy.calls == 2 and junk.status_code == 400
    assert junk.get_json()["error"]["code"] == "platform.bad_event"

    ev = event(case["case_number"], 2, "accepted", code="1")
    body = json.dumps(ev).encode()
    headers = signing.sign_request(province_credentials(app), "POST", PATH, body)
    headers["Content-Type"] = "application/json"
    assert Client(fast).post(PATH, data=body, headers=headers).status_code == 200
    replay = Client(fast).post(PATH, data=body, headers=headers)
    assert spy.calls == 3 and replay.status_code == 401
    assert "replayed_nonce" in replay.get_json()["error"]["message"]

    en = _post(fast, app, event("NO-SUCH-CASE", 1, "received"), **{"Accept-Language": "en"})
    assert en.status_code == 404 and "case" in en.get_json()["error"]["message"].lower()
