"""The commands run with the test app's own Encryptor.

`flask keys ...` and several views reach the Encryptor through `core.crypto.crypto`, the one a
process's app set up. Tests that build an app of their own (tests/api/test_errors.py,
tests/oauth/test_app_token_revocations.py) rebind it; a key-rotation test then changed the keys of
the test app's Encryptor while the command used the other one (it rewrote nothing, and the
retired key was still needed). Here it is the test app's again, as in a process with one app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _the_apps_own_encryptor(request: pytest.FixtureRequest) -> Iterator[None]:
    # Set and restored here, not through `monkeypatch`: a test's monkeypatch.undo() must not
    # give the command the other app's Encryptor back halfway through.
    if "app" not in request.fixturenames:
        yield
        return
    from core.crypto import crypto

    saved = crypto.encryptor
    crypto.encryptor = request.getfixturevalue("app").extensions["yiwang"].encryptor
    try:
        yield
    finally:
        crypto.encryptor = saved
