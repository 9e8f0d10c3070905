"""A demo convenience app for the embedded run (`make run`), so the consent pages can be tried."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core import clock
from domain.oauth.models import APPROVED, NO_AUTH, PUBLIC, OAuthClient

DEMO_CLIENT_ID = "yw_demo_native"
DEMO_REDIRECT = "http://127.0.0.1/callback"
DEMO_SCOPES = "profile.basic applications.read notifications.send"


def seed_demo_client(session: Session) -> bool:
    """An approved native (public) client with a loopback redirect; True if it was created."""
    if session.get(OAuthClient, DEMO_CLIENT_ID) is not None:
        return False
    session.add(
        OAuthClient(
            id=DEMO_CLIENT_ID,
            name="社区便民助手（演示）",
            contact="12345",
            client_type=PUBLIC,
            auth_method=NO_AUTH,
            redirect_uris=[DEMO_REDIRECT],
            scopes=DEMO_SCOPES,
            status=APPROVED,
            created_at=clock.now(),
            created_by="seed",
            status_changed_at=clock.now(),
            status_changed_by="seed",
        )  # fmt: skip
    )
    session.commit()
    return True
