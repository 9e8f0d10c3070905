"""OAuth fixtures: registered clients, a browser signed in on the OAuth pages, a live server."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from core.crypto import random_token, token_hash
from domain.oauth import clients
from domain.operators.audit_log import CLI_ACTOR
from integrations.simulator_server import ThreadedSimulator
from tests.api.v1.applications.conftest import seeded  # noqa: F401 (a fixture for these tests)
from tests.conftest import make_citizen

REDIRECT = "https://bank.example.cn/oauth/callback"
NATIVE_REDIRECT = "http://127.0.0.1/callback"
CITIZEN_SCOPES = [
    "profile.basic",
    "identity.match",
    "applications.read",
    "applications.write",
    "notifications.send",
]


def register(
    app: Any,
    *,
    client_type: str = "confidential",
    scopes: list[str] | None = None,
    redirect_uris: list[str] | None = None,
    approve: bool = True,
    **kw: Any,
) -> dict:
    from core.db import db

    svc = app.extensions["yiwang"]
    session = db.session()
    default_uris = [REDIRECT] if client_type == "confidential" else [NATIVE_REDIRECT]
    reg = clients.register(
        session,
        actor=CLI_ACTOR,
        name=kw.pop("name", "便民银行"),
        contact="95588",
        client_type=client_type,
        redirect_uris=redirect_uris or default_uris,
        scopes=scopes or [*CITIZEN_SCOPES, "catalog.read"],
        **kw,
    )
    if approve:
        clients.set_status(
            session, actor=CLI_ACTOR, revocations=svc.revocations, client_id=reg.client.id, status="approved"
        )
    return {
        "id": reg.client.id,
        "secret": reg.client_secret,
        "redirect_uri": (redirect_uris or default_uris)[0],
    }


@pytest.fixture
def bank(app: Any) -> dict:
    """An approved confidential client (client_secret_basic) allowed every scope."""
    return register(app)


@pytest.fixture
def native(app: Any) -> dict:
    """An approved public (native) client: no secret, loopback redirect, PKCE only."""
    return register(app, client_type="public", name="社区助手", scopes=["profile.basic", "applications.read"])


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(client: dict, challenge: str, **over: Any) -> dict:
    params = {
        "response_type": "code",
        "client_id": client["id"],
        "redirect_uri": client["redirect_uri"],
        "scope": "profile.basic applications.read",
        "state": "st-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(over)
    return {k: v for k, v in params.items() if v is not None}


def browser_record(account_id: str) -> str:
    """A signed-in browser record, as the SMS or QR sign-in leaves it; returns its cookie value."""
    from core.redis import get_redis

    raw = random_token(24)
    record = json.dumps({"account_id": account_id, "csrf": "c" * 22})
    get_redis().set(f"oauth:browser:{token_hash(raw)}", record, ex=900)
    return raw


def sign_in_browser(http: Any, account_id: str) -> None:
    """Sign the Flask test client's browser in on the OAuth pages."""
    http.set_cookie("yw_oauth", browser_record(account_id), domain="localhost", path="/oauth")


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def consent(
    http: Any, params: dict, *, decision: str = "allow", sensitive: list[str] | None = None, days: int = 90
) -> Any:
    """Open the consent page for `params` and answer it; returns the answer (a redirect)."""
    page = http.get("/oauth/authorize?" + urlencode(params))
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    form = hidden_fields(page.get_data(as_text=True))
    data = {**form, "decision": decision, "days": str(days), "sensitive": sensitive or []}
    return http.post("/oauth/authorize", data=data)


def redirect_params(resp: Any) -> dict[str, str]:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    location = resp.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def basic(client: dict) -> dict[str, str]:
    raw = base64.b64encode(f"{client['id']}:{client['secret']}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def get_code(
    app: Any,
    http: Any,
    client: dict,
    account_id: str,
    scope: str = "profile.basic applications.read",
    sensitive: list[str] | None = None,
) -> tuple[str, str]:
    """(code, verifier) for a citizen who consents in a signed-in browser."""
    verifier, challenge = pkce()
    sign_in_browser(http, account_id)
    got = redirect_params(
        consent(http, authorize_params(client, challenge, scope=scope), sensitive=sensitive)
    )
    return got["code"], verifier


def exchange(http: Any, client: dict, code: str, verifier: str) -> Any:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client["redirect_uri"],
        "code_verifier": verifier,
    }
    headers = basic(client) if client.get("secret") else {}
    if not client.get("secret"):
        data["client_id"] = client["id"]
    return http.post("/oauth/token", data=data, headers=headers)


@pytest.fixture
def tokens_for(app: Any, client: Any) -> Any:
    """tokens_for(client_dict, scope=...) → (citizen, token response body)."""

    def make(
        oauth_client: dict,
        scope: str = "profile.basic applications.read",
        citizen: dict | None = None,
        sensitive: list[str] | None = None,
    ) -> tuple[dict, dict]:
        who = citizen or make_citizen(app)
        code, verifier = get_code(app, app.test_client(), oauth_client, who["account_id"], scope, sensitive)
        resp = exchange(client, oauth_client, code, verifier)
        assert resp.status_code == 200, resp.get_json()
        return who, resp.get_json()

    return make


@pytest.fixture
def live(app: Any) -> Iterator[ThreadedSimulator]:
    """The app on a real localhost port, for clients nobody here wrote and for the browser."""
    server = ThreadedSimulator(app).start()
    yield server
    server.stop()
