# yiwang — every documented way to do something is a make target.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: install browser run test lint format bench migrate worker sweeper forwarder notifier bench-forwarding bench-notifications bench-appointments bench-burden bench-oauth stop clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## Create the virtualenv and install pinned dependencies.
install: $(STAMP)

## Run everything on the embedded defaults: migrate, seed, simulators, API, worker, sweeper.
run: install
	$(BIN)/python -m cli.devrun

## Run the test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, embedded otherwise),
## in TEST_WORKERS processes (pytest-xdist; 0 runs it in this process alone).
TEST_WORKERS ?= 2
test: install browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --max-worker-restart=0 $(PYTEST_ARGS)

## Debian's Chromium for the OAuth page tests (installed once, when missing).
browser:
	scripts/ensure-chromium

## ruff lint + format check, and the import-direction contract.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Load test gunicorn (production config, PostgreSQL + Redis) against a bare-Flask baseline.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS); status=$$?; \
	$(BIN)/python -m bench.forwarding $(BENCH_FORWARDING_ARGS) || status=$$?; \
	$(BIN)/python -m bench.notifications $(BENCH_NOTIFICATIONS_ARGS) || status=$$?; \
	$(BIN)/python -m bench.appointments $(BENCH_APPOINTMENTS_ARGS) || status=$$?; exit $$status

bench-forwarding: install
	$(BIN)/python -m bench.forwarding $(BENCH_FORWARDING_ARGS)

bench-notifications: install
	$(BIN)/python -m bench.notifications $(BENCH_NOTIFICATIONS_ARGS)

bench-appointments: install
	$(BIN)/python -m bench.appointments $(BENCH_APPOINTMENTS_ARGS)

bench-burden: install
	$(BIN)/python -m bench.burden $(BENCH_BURDEN_ARGS)

bench-oauth: install
	$(BIN)/python -m bench.oauth $(BENCH_OAUTH_ARGS)

migrate: install
	$(BIN)/flask --app wsgi migrate

worker: install
	$(BIN)/python -m workers.rq_worker

sweeper: install
	$(BIN)/python -m workers.sweeper

forwarder: install
	$(BIN)/python -m workers.forwarder

notifier: install
	$(BIN)/python -m workers.notifier

## Stop the embedded Redis left by `make run`.
stop:
	-$(BIN)/python -c "from config import load_config; from core.redis import stop_embedded; stop_embedded(load_config().INSTANCE_DIR)"

clean: stop
	rm -rf instance/ .pytest_cache .ruff_cache
