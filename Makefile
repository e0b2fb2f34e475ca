# Waypost — the verbs people expect. Every target creates the virtualenv it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000
# Test processes: the suite mostly waits on its workers and servers, so more than the cores.
TEST_PROCESSES ?= 5
# Compiled modules are kept (in __pycache__/, ignored by git) even where the environment says
# otherwise: make test starts about a hundred Python processes, and pytest rewrites every test
# module's asserts again in each of its own when it may not keep them (4-5 s a process).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo run stack test test-fast test-unit lint format docs docs-serve bench chaos clean

$(STAMP): pyproject.toml
	@scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"
	@touch $(STAMP)

## demo: the end-to-end flow on embedded defaults (SQLite, in-process broker, sandbox);
## `make demo PORT=8100 SANDBOX_PORT=8125` moves its two ports
demo: SANDBOX_PORT ?= 8025
demo: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(BIN)/python manage.py demo --port $(PORT) \
		--sandbox-port $(SANDBOX_PORT)

## run: the development server on the local settings
run: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(BIN)/python manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=config.settings.local $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

## stack: the production processes (Procfile.sandbox: the Procfile and the sandbox in place of
## Meta) on production settings, a private PostgreSQL and Redis; prints a key and a login
stack: $(STAMP)
	PORT=$(PORT) scripts/with-services.sh $(BIN)/python -m devtools.stack

## test: every tier — unit (with no services at all), then integration and system in parallel
## (pytest-xdist: one database and one Redis database per process) on a private PostgreSQL and
## Redis. 9 to 13 minutes on a fresh clone of a 2-core machine, the virtualenv included.
test: test-unit
	scripts/with-services.sh $(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal -m "not unit" $(PYTEST_ARGS)

## test-fast: the inner loop — unit and integration tiers, no processes started (1.3 minutes)
test-fast: $(STAMP)
	scripts/with-services.sh $(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal -m "unit or integration" $(PYTEST_ARGS)

## test-unit: the unit tier with PostgreSQL and Redis unreachable: a "unit" test that needs
## either fails here (about 40 seconds)
test-unit: $(STAMP)
	DATABASE_URL=postgres://nobody@127.0.0.1:9/none REDIS_URL=redis://127.0.0.1:9/0 \
		$(BIN)/pytest -q -n 2 -m unit -p no:cacheprovider $(PYTEST_ARGS)

## lint: ruff, formatting, import directions, missing migrations, nothing outside the repo referenced
lint: $(STAMP)
	scripts/check-self-contained.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DJANGO_SETTINGS_MODULE=config.settings.local $(BIN)/python manage.py makemigrations --check --dry-run

## docs: the documentation site (mkdocs.yml, docs/) into var/site, strictly: a broken link or
## anchor, or a page missing from the nav, fails it
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d var/site

## docs-serve: the documentation site on http://127.0.0.1:8200, rebuilt as you write
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict -a 127.0.0.1:8200

## bench: Waypost as deployed (the Procfile stack over HTTP), each figure beside its baseline,
## written to bench/RESULTS.md; `make bench ARGS=--quick` is a < 3-minute smoke run
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" -eq 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || \
		{ echo "bench needs wrk: sudo apt-get install wrk"; exit 1; }
	WAYPOST_PG_DURABLE=1 scripts/with-services.sh $(BIN)/python bench/run.py $(ARGS)

## chaos: break the deployed stack on purpose (workers, Redis, PostgreSQL, gunicorn, faults,
## a dead callback receiver) and count; writes docs/RELIABILITY.md (`ARGS=--quick`: ~4 min)
chaos: $(STAMP)
	scripts/with-services.sh $(BIN)/python -m bench.chaos $(ARGS)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
