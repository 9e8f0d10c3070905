"""An in-person check keeps the id of the hall where it was made, not only the hall's name."""

from __future__ import annotations

from sqlalchemy import select

from domain.identity.models import IdentityVerification
from tests.api.v1.identity.conftest import LI
from tests.appointments.conftest import make_hall
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator

URL = "/admin/v1/identity/in-person-checks"


def test_the_hall_id_is_recorded_and_given_back_with_the_name(app, client, app_citizen, db_session):
    hall = make_hall(app)
    officer = admin_headers(client, make_operator(app, username="hall-one", roles=("hall_officer",),
                                                  hall_ids=(hall,)))  # fmt: skip
    body = {"account_id": app_citizen["account_id"], **LI, "document_checked": True}
    done = client.post(URL, json=body, headers=officer)  # the officer's only hall, taken for them
    assert done.status_code == 201, done.get_json()
    answer = done.get_json()
    assert (answer["hall_id"], answer["hall"]) == (hall, "天河区政务服务中心")
    db_session.rollback()
    row = db_session.get(IdentityVerification, answer["verification_id"])
    assert (row.hall_id, row.hall) == (hall, "天河区政务服务中心")


def test_a_typed_hall_name_has_no_id_and_a_refused_check_writes_nothing(app, client, db_session):
    make_hall(app)  # a hall exists, but this check names none by id
    officer = admin_headers(client, make_operator(app, username="hall-any", roles=("hall_officer",)))
    first, second = make_citizen(app), make_citizen(app)
    typed = {"account_id": first["account_id"], **LI, "document_checked": True, "hall": "越秀区政务服务中心"}
    done = client.post(URL, json=typed, headers=officer)
    assert done.status_code == 201, done.get_json()
    assert (done.get_json()["hall_id"], done.get_json()["hall"]) == (None, "越秀区政务服务中心")
    too_long = {"account_id": second["account_id"], **LI, "document_checked": True, "hall_id": "x" * 37}
    assert client.post(URL, json=too_long, headers=officer).status_code == 422
    unknown = too_long | {"hall_id": "no-such-hall"}
    assert client.post(URL, json=unknown, headers=officer).status_code == 404
    db_session.rollback()
    rows = db_session.scalars(select(IdentityVerification)).all()
    assert [(r.hall_id, r.hall) for r in rows] == [(None, "越秀区政务服务中心")]
