"""The key commands use the Encryptor of the app they run in (its services), not the process-wide
`core.crypto.crypto` another app built in the same process rebinds."""

from __future__ import annotations

from typing import Any

from tests.conftest import make_citizen
from tests.evaluations.test_the_apps_own_encryptor import another_app  # noqa: F401 - fixture


def test_key_commands_use_their_apps_keys_after_another_app_was_built(
    app: Any,
    client: Any,
    services: Any,
    another_app: Any,  # noqa: F811
) -> None:
    assert another_app.extensions["yiwang"].encryptor is not services.encryptor
    rotated = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    # The new signing key is stored under this app's keys: this app signs and verifies with it.
    who = make_citizen(app)
    assert client.get("/v1/me", headers=who["headers"]).status_code == 200
    result = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert result.exit_code == 0, result.output
    assert f"now uses key {services.encryptor.active_kid}" in result.output
