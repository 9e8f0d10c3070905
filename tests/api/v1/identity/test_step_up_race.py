"""A face step-up that completes while another account's face check takes the same identity
from it: the step-up must see the identity gone, never leave an account at L3 holding none."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import select

from domain.accounts.models import Account
from domain.identity import binding
from domain.identity.models import VerifiedIdentity
from tests.api.v1.identity.conftest import complete, mini_citizen, ref_of, start
from tests.conftest import make_citizen


def test_a_step_up_racing_a_displacement_never_leaves_an_l3_account_without_an_identity(
    app: Any, client: Any, wx: Any, sims: Any, db_session: Any, monkeypatch: Any
) -> None:
    b = make_citizen(app)
    assert start(client, b, "id_check", consent=None).get_json()["identity_level"] == "L2"
    b_face = start(client, b, "tencent_faceid").get_json()
    sims["tencent_faceid"].perform(ref_of(b_face), "pass")
    a = mini_citizen(client, wx)  # the same person's face, on another account
    a_face = start(client, a, "wechat_face").get_json()
    sims["wechat_face"].perform(ref_of(a_face), "pass")

    inside = threading.Event()
    original = binding.revoke_all

    def slow_revoke_all(*args: Any, **kwargs: Any) -> Any:  # A's displacement holds B's row a moment
        out = original(*args, **kwargs)
        inside.set()
        time.sleep(1.0)
        return out

    monkeypatch.setattr(binding, "revoke_all", slow_revoke_all)
    answers: dict[str, Any] = {}

    def run_a() -> None:
        with app.test_client() as c:
            answers["a"] = complete(c, a, a_face["verification"]["id"])

    t = threading.Thread(target=run_a)
    t.start()
    assert inside.wait(10)
    answers["b"] = complete(client, b, b_face["verification"]["id"])  # waits for A's commit
    t.join(30)
    assert answers["a"].status_code == 200, answers["a"].get_json()
    db_session.rollback()
    held = {v.account_id for v in db_session.scalars(select(VerifiedIdentity))}
    b_account = db_session.get(Account, b["account_id"])
    # Every active account above L1 holds a verified identity.
    above_l1 = b_account.status == "active" and b_account.identity_level != "L1"
    assert not above_l1 or b["account_id"] in held, (b_account.identity_level, held, answers["b"].get_json())
