import re

import pyotp
from sqlalchemy import select

from core import clock as clock_mod
from core.audit import AuditEvent
from core.db import db
from core.outbox import service as outbox
from core.outbox.models import DEAD, PENDING, OutboxJob
from domain.operators.models import Operator
from domain.operators.scope import scope_of
from tests.api.v1.applications.conftest import seeded  # noqa: F401 - fixture
from tests.appointments.conftest import make_hall
from tests.domain.operators.factories import login, make_operator
from workers.jobs import execute_outbox_job

PASSWORD = "first operator passphrase"


def create(app, *args, input=PASSWORD + "\n"):
    return app.test_cli_runner().invoke(
        args=["operators", "create", "--username", "admin", "--display-name", "管理员", *args], input=input
    )


def test_cli_creates_the_first_operator_who_can_then_log_in(app, client):
    result = create(app, "--role", "admin", "--role", "auditor", "--password-stdin")
    assert result.exit_code == 0, result.output
    secret = re.search(r"secret: ([A-Z2-7]+)", result.output).group(1)
    uri = re.search(r"uri:\s+(otpauth://\S+)", result.output).group(1)
    assert pyotp.parse_uri(uri).secret == secret
    assert PASSWORD not in result.output
    operator = db.session().scalar(select(Operator).where(Operator.username == "admin"))
    assert operator.roles == ["admin", "auditor"] and operator.display_name == "管理员"
    code = pyotp.TOTP(secret).at(clock_mod.timestamp())
    resp = login(client, {"username": "admin", "password": PASSWORD, "secret": secret}, code=code)
    assert resp.status_code == 200, resp.get_json()
    # The first admin chose this password: nothing asks them to change it.
    assert resp.get_json()["must_change_password"] is False and operator.must_change_password is False
    headers = {"Authorization": f"Bearer {resp.get_json()['access_token']}"}
    assert client.get("/admin/v1/operators", headers=headers).status_code == 200
    event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "operator.create"))
    assert (event.actor_type, event.actor_id, event.target_id) == ("system", "cli", operator.id)


def test_cli_asks_operators_created_after_the_first_admin_to_change_the_password(app, client):
    first = create(app, "--role", "admin", "--password-stdin")
    assert first.exit_code == 0 and "must change" not in first.output
    other = app.test_cli_runner().invoke(
        args=["operators", "create", "--username", "bob", "--display-name", "Bob", "--role", "admin",
              "--password-stdin"], input="picked by the first admin\n",
    )  # fmt: skip
    assert other.exit_code == 0, other.output
    assert "the operator must change this password after logging in" in other.output
    flags = dict(db.session().execute(select(Operator.username, Operator.must_change_password)).all())
    assert flags == {"admin": False, "bob": True}
    secret = re.search(r"secret: ([A-Z2-7]+)", other.output).group(1)
    bob = {"username": "bob", "password": "picked by the first admin", "secret": secret}
    resp = login(client, bob, code=pyotp.TOTP(secret).at(clock_mod.timestamp()))
    assert resp.status_code == 200 and resp.get_json()["must_change_password"] is True
    headers = {"Authorization": f"Bearer {resp.get_json()['access_token']}"}
    refused = client.get("/admin/v1/operators", headers=headers)
    assert (
        refused.status_code == 403 and refused.get_json()["error"]["code"] == "admin.password_change_required"
    )
    events = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "operator.create")).all()
    assert sorted(e.details["must_change_password"] for e in events) == [False, True]


def test_cli_prompts_for_the_password_twice_without_echo(app):
    result = create(app, "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    mismatch = app.test_cli_runner().invoke(
        args=["operators", "create", "--username", "bob", "--display-name", "Bob", "--role", "ops"],
        input=f"{PASSWORD}\nsomething else entirely\n" * 1,
    )
    assert mismatch.exit_code != 0
    assert db.session().scalar(select(Operator).where(Operator.username == "bob")) is None


def test_cli_refuses_a_weak_password_and_unknown_roles(app):
    weak = create(app, "--role", "admin", "--password-stdin", input="short\n")
    assert weak.exit_code == 1 and "admin.password_weak" in weak.output
    role = create(app, "--role", "root", "--password-stdin")
    assert role.exit_code == 2 and "root" in role.output
    assert db.session().scalars(select(Operator)).all() == []


def test_cli_unlocks_a_locked_operator(app, client):
    op = make_operator(app, username="bob", roles=("ops",))
    for i in range(5):
        login(client, op, password=f"wrong password {i}")
    assert login(client, op).status_code == 403
    result = app.test_cli_runner().invoke(args=["operators", "unlock", "bob"])
    assert result.exit_code == 0, result.output
    assert login(client, op).status_code == 200
    missing = app.test_cli_runner().invoke(args=["operators", "unlock", "nobody"])
    assert missing.exit_code == 1 and "admin.operator_not_found" in missing.output


def test_cli_lists_and_replays_dead_jobs(app, db_session):
    job = outbox.add(db_session, "system.probe", {"fail": "permanent"})
    alive = outbox.add(db_session, "system.probe", {})
    db_session.commit()
    job_id, alive_id = job.id, alive.id
    assert execute_outbox_job(job_id) == DEAD
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "list", "--status", "dead"])
    assert listed.exit_code == 0 and job_id in listed.output and alive_id not in listed.output
    assert "permanent: probe asked to fail" in listed.output
    replayed = runner.invoke(args=["jobs", "replay", job_id])
    assert replayed.exit_code == 0, replayed.output
    db_session.expire_all()
    assert db_session.get(OutboxJob, job_id).status == PENDING
    not_dead = runner.invoke(args=["jobs", "replay", alive_id])
    assert not_dead.exit_code == 1 and "admin.job_not_dead" in not_dead.output
    assert runner.invoke(args=["jobs", "list", "--status", "dead"]).output.strip() == "no jobs"


def test_cli_ties_a_new_operator_to_halls_and_departments(app, seeded):  # noqa: F811
    first, second = make_hall(app), make_hall(app)
    result = create(
        app,
        "--role",
        "hall_officer",
        "--role",
        "case_operator",
        "--hall",
        first,
        "--hall",
        second,
        "--hall",
        first,
        "--department",
        "public_security",
        "--password-stdin",
    )
    assert result.exit_code == 0, result.output
    operator = db.session().scalar(select(Operator).where(Operator.username == "admin"))
    assert operator.hall_ids == [first, second] and operator.department_codes == ["public_security"]
    assert scope_of(operator).halls == {first, second}
    event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "operator.create"))
    assert event.details["hall_ids"] == [first, second]
    assert event.details["department_codes"] == ["public_security"]


def test_cli_refuses_unknown_halls_and_departments_and_creates_nothing(app, seeded):  # noqa: F811
    hall = make_hall(app)
    result = create(
        app,
        "--role",
        "hall_officer",
        "--hall",
        hall,
        "--hall",
        "no-such-hall",
        "--department",
        "mars",
        "--department",
        "public_security",
        "--password-stdin",
    )
    assert result.exit_code == 1
    assert "admin.scope_unknown" in result.output and "Traceback" not in result.output
    assert "--hall 'no-such-hall'" in result.output and "--department 'mars'" in result.output
    assert hall not in result.output and "public_security" not in result.output
    assert db.session().scalars(select(Operator)).all() == []
    assert db.session().scalars(select(AuditEvent).where(AuditEvent.action == "operator.create")).all() == []
