# Waypost — the verbs people expect. Every target creates the virtualenv it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000

.PHONY: demo run test lint format bench clean

$(STAMP): pyproject.toml
	@scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"
	@touch $(STAMP)

## demo: the end-to-end flow on embedded defaults (SQLite, in-process broker, sandbox)
demo: $(STAMP)
	$(BIN)/python manage.py demo --port $(PORT)

## run: the development server on the local settings
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

## test: the whole suite on a private PostgreSQL and Redis
test: $(STAMP)
	scripts/with-services.sh $(BIN)/pytest $(PYTEST_ARGS)

## lint: ruff, formatting, import directions, missing migrations, nothing outside the repo referenced
lint: $(STAMP)
	scripts/check-self-contained.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run

## bench: the benchmarks in bench/ (each prints ratios against a baseline run in the same session)
bench: $(STAMP)
	$(BIN)/python bench/sandbox_bench.py
	WAYPOST_PG_DURABLE=1 scripts/with-services.sh $(BIN)/python bench/send_path_bench.py
	WAYPOST_PG_DURABLE=1 scripts/with-services.sh $(BIN)/python bench/webhook_bench.py
	WAYPOST_PG_DURABLE=1 scripts/with-services.sh $(BIN)/python bench/dispatch_bench.py

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
