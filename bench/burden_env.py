"""The burden benchmark's world: the app on a throwaway database, the simulators, the catalog, citizens."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from bench.burden_model import HALL, ROOT, BenchError


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


class Environment:
    """The app, its SQLite database and embedded Redis, and the two govdata simulators."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.instance = work / "instance"
        self.exchange: Any = None
        self.ecert: Any = None
        self.context: Any = None
        self._previous_clock: Any = None

    def start(self) -> None:
        from config import TestConfig
        from core import clock
        from integrations.govdata import ecert_sim, exchange_sim
        from integrations.simulator_server import ThreadedSimulator

        work = self.work
        url = f"sqlite:///{work / 'burden.db'}"
        migrate(url)
        base = {
            "ENV_NAME": "test",
            "INSTANCE_DIR": self.instance,
            "STORAGE_LOCAL_ROOT": str(work / "blobs"),
            "DATABASE_URL": url,
            "REDIS_URL": None,  # the embedded Redis, in the throwaway instance folder
            "LOG_LEVEL": "WARNING",
            "ACCESS_LOG": False,
        }
        sim_config = vars(TestConfig()) | base
        # Conditional records wait for the control API (no approval timer).
        self.exchange = ThreadedSimulator(
            exchange_sim.create_simulator(sim_config | {"EXCHANGE_SIM_APPROVAL_SECONDS": 0})
        ).start()
        self.ecert = ThreadedSimulator(ecert_sim.create_simulator(sim_config)).start()
        # The clock moves only when told: the sweeper's poll interval is skipped, not waited out.
        self.clock = clock.FrozenClock()
        self._previous_clock = clock.use(self.clock)
        from factory import create_app

        self.app = create_app(
            base | {"EXCHANGE_BASE_URL": self.exchange.url, "ECERT_BASE_URL": self.ecert.url}
        )
        self.context = self.app.app_context()
        self.context.push()
        self.client = self.app.test_client()

    def close(self) -> None:
        from core import clock
        from core.db import db
        from core.redis import stop_embedded

        try:
            if self.context is not None:
                db.session.remove()
                if db.engine is not None:
                    db.engine.dispose()
                self.context.pop()
        finally:
            if self._previous_clock is not None:
                clock.use(self._previous_clock)
            for sim in (self.exchange, self.ecert):
                if sim is not None:
                    sim.stop()
            stop_embedded(self.instance, save=False)  # nothing to do when it never started


def import_catalog() -> list[tuple[str, str]]:
    """Import and publish the seeded catalog; (code, name) of every published item, in seed order."""
    from sqlalchemy import select

    from cli.catalog import SEED_DIR, SEED_FILES, merged_documents
    from core.db import db
    from domain.catalog import importing
    from domain.catalog.models import STATUS_PUBLISHED, ServiceItem
    from domain.operators.audit_log import CLI_ACTOR

    document = merged_documents([SEED_DIR / name for name in SEED_FILES])
    document["publish"] = True
    session = db.session()
    report = importing.import_catalog(session, CLI_ACTOR, document, dry_run=False)
    if not report.ok:
        raise BenchError(f"seeded catalog did not import: {report.problems}")
    published = dict(
        session.execute(
            select(ServiceItem.code, ServiceItem.name).where(ServiceItem.status == STATUS_PUBLISHED)
        ).all()
    )
    return [(it["code"], published[it["code"]]) for it in document["items"] if it["code"] in published]


class Citizens:
    """One account per person of the population, verified in person at a hall (L3), made once."""

    def __init__(self, app: Any) -> None:
        from integrations.govdata.population import Population

        self.app = app
        self.population = Population(
            int(app.config["GOVDATA_SIM_POPULATION"]), int(app.config["GOVDATA_SIM_SEED"])
        )
        self.adults = [p for p in self.population.people.values() if p.adult]
        self.index = {number: i for i, number in enumerate(self.population.people)}
        self.headers: dict[str, dict[str, str]] = {}

    def sample(self, code: str, n: int, seed: int) -> list[Any]:
        """`n` adults drawn uniformly for item `code` (the same for the same seed, any item order)."""
        return random.Random(f"{seed}:{code}").sample(self.adults, min(n, len(self.adults)))

    def of(self, person: Any) -> dict[str, str]:
        if person.id_number not in self.headers:
            from core.db import db
            from domain.accounts import service as accounts
            from domain.auth import sessions
            from domain.identity import hall

            svc = self.app.extensions["yiwang"]
            session = db.session()
            account, _ = accounts.login_phone(
                session, encryptor=svc.encryptor, hasher=svc.hasher,
                phone=f"139{self.index[person.id_number]:08d}",
            )  # fmt: skip
            pair = sessions.start_session(
                session, tokens=svc.tokens, policy=svc.citizen_policy, account=account,
                channel="app", device_label="bench",
            )  # fmt: skip
            hall.record_in_person(
                db.session(), deps=svc.identity, operator_id="op-bench", account_id=pair.account_id,
                name=person.name, id_number=person.id_number, hall=HALL, request_id=None,
            )  # fmt: skip
            self.headers[person.id_number] = {"Authorization": f"Bearer {pair.access_token}"}
        return self.headers[person.id_number]
