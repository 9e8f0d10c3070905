"""Shared fixtures: real PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, embedded otherwise.

- The schema is built by the Alembic migrations (not create_all), once per test session.
- With PostgreSQL, a fresh database is created for the session and dropped afterwards.
- Every test starts with empty tables, an empty Redis database and a frozen clock.
- The WeChat and SMS simulators run as real HTTP servers on localhost ports.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core import clock as clock_mod
from integrations.simulator_server import ThreadedSimulator
from tests.answer_check import AnswerCheck

ROOT = Path(__file__).resolve().parent.parent


def _fresh_postgres(url: str) -> tuple[str, Any]:
    base = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"yiwang_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def alembic_config(url: str | None = None) -> Any:
    """The project's Alembic configuration, aimed at `url` when given."""
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Build the schema with Alembic, as production does."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def worker_redis_url(url: str | None) -> str | None:
    """`url`, or under pytest-xdist one Redis database per worker: every test flushes its
    database, so two workers must not share one. Worker gwN takes the configured database's
    number minus N (`redis://host:6379/15` gives 15, 14, ...); the embedded Redis (no URL)
    already lives in each worker's own instance folder."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw") or 0)
    # A worker xdist started in place of a crashed one is named past the count: it would flush a
    # database no one set aside for the tests (the Makefile also forbids restarts).
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", index + 1))
    if index >= count:
        raise pytest.UsageError(f"test worker {worker} of {count}: no Redis database is set aside for it")
    if url is None or index == 0:
        return url
    base, _, number = url.rpartition("/")
    db = (int(number) if number.isdigit() else 0) - index
    if not number.isdigit() or db < 0:
        raise pytest.UsageError(f"REDIS_URL must end in a database number of at least {index} under -n")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def instance_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="yiwang-test-"))
    yield path
    from core.redis import stop_embedded

    stop_embedded(path, save=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(instance_dir: Path) -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL")
    if configured and configured.startswith("postgresql"):
        url, drop = _fresh_postgres(configured)
        migrate(url)
        yield url
        from core.db import db

        if db.engine is not None:
            db.engine.dispose()
        drop()
    else:
        url = f"sqlite:///{instance_dir / 'test.db'}"
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def base_config(instance_dir: Path, database_url: str) -> dict[str, Any]:
    """The test configuration (before simulator URLs are added)."""
    return {
        "ENV_NAME": "test",
        "TESTING": True,
        "INSTANCE_DIR": instance_dir,
        "STORAGE_LOCAL_ROOT": str(instance_dir / "blobs"),
        "LEDGER_SPOOL_DIR": str(instance_dir / "spool" / "ledger"),
        "DATABASE_URL": database_url,
        "REDIS_URL": worker_redis_url(os.environ.get("REDIS_URL") or None),
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG": False,
        # Where the province simulator sends callbacks until a test aims them at its own server:
        # a port nothing listens on, never a `make run` on this machine (:8000).
        "PROVINCE_SIM_CALLBACK_URL": "http://127.0.0.1:9/",
    }


@pytest.fixture(scope="session")
def wechat_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    from config import TestConfig
    from integrations.wechat.simulator import create_simulator

    sim = ThreadedSimulator(create_simulator(vars(TestConfig()) | base_config)).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def sms_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    from config import TestConfig
    from integrations.sms.simulator import create_simulator

    sim = ThreadedSimulator(create_simulator(vars(TestConfig()) | base_config)).start()
    yield sim
    sim.stop()


def _serve(base_config: dict[str, Any], module: str) -> ThreadedSimulator:
    import importlib

    from config import TestConfig

    create = importlib.import_module(module).create_simulator
    return ThreadedSimulator(create(vars(TestConfig()) | base_config)).start()


@pytest.fixture(scope="session")
def faceid_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    sim = _serve(base_config, "integrations.tencentcloud.faceid_simulator")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def alipay_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    sim = _serve(base_config, "integrations.alipay.simulator")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def idcheck_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    sim = _serve(base_config, "integrations.idcheck.simulator")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def province_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    """The provincial platform, moving cases only when a test says so (no schedule)."""
    from config import TestConfig
    from integrations.province.simulator import create_simulator

    cfg = vars(TestConfig()) | base_config | {"PROVINCE_SIM_SCHEDULE": "off"}
    sim = ThreadedSimulator(create_simulator(cfg)).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def apns_sim(base_config: dict[str, Any]) -> Iterator[Any]:
    """APNs over HTTP/2 (hypercorn)."""
    from config import TestConfig
    from integrations.apns.simulator import H2Server, create_simulator

    sim = H2Server(create_simulator(vars(TestConfig()) | base_config)).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def jpush_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    sim = _serve(base_config, "integrations.jpush.simulator")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def huawei_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    sim = _serve(base_config, "integrations.huawei.simulator")
    yield sim
    sim.stop()


# Provider calls in tests time out sooner than in production, so a timeout test stays short.
@pytest.fixture(scope="session")
def exchange_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    """The data-sharing exchange; conditional records wait for the control API (no timer)."""
    sim = _serve(base_config | {"EXCHANGE_SIM_APPROVAL_SECONDS": 0}, "integrations.govdata.exchange_sim")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def ecert_sim(base_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    sim = _serve(base_config, "integrations.govdata.ecert_sim")
    yield sim
    sim.stop()


TEST_PROVIDER_TIMEOUT = 1.5


@pytest.fixture(scope="session")
def app_config(
    base_config: dict,
    wechat_sim: ThreadedSimulator,
    sms_sim: ThreadedSimulator,
    faceid_sim: ThreadedSimulator,
    alipay_sim: ThreadedSimulator,
    idcheck_sim: ThreadedSimulator,
    province_sim: ThreadedSimulator,
    apns_sim: Any,
    jpush_sim: ThreadedSimulator,
    huawei_sim: ThreadedSimulator,
    exchange_sim: ThreadedSimulator,
    ecert_sim: ThreadedSimulator,
) -> dict:
    return base_config | {
        "WECHAT_API_BASE": wechat_sim.url,
        "SMS_ENDPOINT": f"{sms_sim.host}:{sms_sim.port}",
        "SMS_SCHEME": "http",
        "FACEID_ENDPOINT": f"{faceid_sim.host}:{faceid_sim.port}",
        "FACEID_SCHEME": "http",
        "ALIPAY_GATEWAY": f"{alipay_sim.url}gateway.do",
        "IDCHECK_BASE_URL": idcheck_sim.url,
        "PROVINCE_BASE_URL": province_sim.url,
        "APNS_BASE_URL": apns_sim.url,
        "JPUSH_BASE_URL": jpush_sim.url,
        "HUAWEI_PUSH_BASE_URL": huawei_sim.url,
        "HUAWEI_TOKEN_URL": f"{huawei_sim.url}oauth2/v3/token",
        "PROVIDER_TIMEOUT": TEST_PROVIDER_TIMEOUT,
        "EXCHANGE_BASE_URL": exchange_sim.url,
        "ECERT_BASE_URL": ecert_sim.url,
        "GOVDATA_TIMEOUT": TEST_PROVIDER_TIMEOUT,
    }


@pytest.fixture(scope="session")
def app(app_config: dict) -> Iterator[Any]:
    from factory import create_app

    application = create_app(app_config)
    check = AnswerCheck(application)
    check.connect()
    application.extensions["tests.answer_check"] = check
    with application.app_context():
        yield application


@pytest.fixture(autouse=True)
def clock() -> Iterator[clock_mod.FrozenClock]:
    """A frozen clock at the current time; tests move it with clock.advance(seconds)."""
    frozen = clock_mod.FrozenClock()
    previous = clock_mod.use(frozen)
    yield frozen
    clock_mod.use(previous)


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty tables and Redis before each test that uses the app."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    _wipe(app)
    app.extensions["tests.answer_check"].take()  # a test that failed before its teardown left these
    yield
    from core.db import db

    db.session.remove()
    differ = app.extensions["tests.answer_check"].take()
    if differ:
        pytest.fail(
            "answers that differ from the OpenAPI document (tests/answer_check.py):\n" + "\n".join(differ)
        )


def _wipe(app: Any) -> None:
    from core.db import Base, db
    from core.redis import get_redis

    db.session.remove()
    with db.engine.begin() as conn:  # type: ignore[union-attr]
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    get_redis().flushdb()
    app.extensions["yiwang"].keyring.invalidate()
    app.extensions["yiwang"].catalog.reset()
    app.extensions["yiwang"].applications.case_numbers.forget_reserved()  # case_serials was emptied


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def db_session(app: Any) -> Iterator[Any]:
    """The scoped session of this thread; closed after the test even if a job replaced it."""
    from core.db import db

    session = db.session()
    yield session
    session.close()


@pytest.fixture
def services(app: Any) -> Any:
    return app.extensions["yiwang"]


def make_citizen(
    app: Any, *, channel: str = "app", device_label: str = "测试手机", phone: str | None = None
) -> dict:
    """Create an account (by phone) and a session directly through the domain services."""
    from core.db import db
    from domain.accounts import service as accounts
    from domain.auth import sessions

    svc = app.extensions["yiwang"]
    session = db.session()
    account, _ = accounts.login_phone(
        session,
        encryptor=svc.encryptor,
        hasher=svc.hasher,
        phone=phone or f"139{uuid.uuid4().int % 10**8:08d}",
    )
    pair = sessions.start_session(
        session, tokens=svc.tokens, policy=svc.citizen_policy, account=account,
        channel=channel, device_label=device_label,
    )  # fmt: skip
    return {
        "account_id": pair.account_id,
        "session_id": pair.session_id,
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "headers": {"Authorization": f"Bearer {pair.access_token}"},
    }


@pytest.fixture
def citizen(app: Any) -> dict:
    """A logged-in citizen on the app channel."""
    return make_citizen(app)
