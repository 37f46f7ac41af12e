# Two entry points: `make run` (the service) and `make test` (the whole suite).
# Both prepare everything a fresh Debian machine needs: the venv, PostgreSQL, Redis,
# FreeRADIUS (packages, schema, a private instance), the schema migrations.

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: run test prepare services radius lint clean

$(STAMP): setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A Fernet key for the secrets we hold, made once per checkout; honcho reads .env too.
.env:
	@$(MAKE) --no-print-directory $(STAMP)
	@echo "ORCHESTRATOR_SECRET_KEY=$$($(BIN)/orchestrator secret-key)" > .env
	@echo "created .env with a new ORCHESTRATOR_SECRET_KEY"

services:
	scripts/services.sh orchestrator

radius:
	scripts/freeradius.sh start

prepare: $(STAMP) .env services radius
	set -a && . ./.env && set +a && $(BIN)/orchestrator db upgrade && $(BIN)/orchestrator seed-demo

# Every Procfile line runs under scripts/supervise.py: a process that dies is started again
# instead of honcho stopping all the others (Ctrl-C still stops everything).
run: prepare
	@mkdir -p var
	@echo
	@echo "API       http://127.0.0.1:8000/api/v1/orchestration/  (health: /healthz)"
	@echo "Flower    http://127.0.0.1:5555/"
	@echo "Metrics   http://127.0.0.1:8000/metrics  (Prometheus; alerts in deploy/prometheus/)"
	@echo "RADIUS    127.0.0.1:1812 (secret testing123), log var/freeradius/log/radius.log"
	@echo "API key   set -a; . ./.env; set +a; $(BIN)/orchestrator api-key create --tenant demo --role operator | tail -n 1"
	@echo
	@rm -rf var/metrics && mkdir -p var/metrics
	PATH="$(CURDIR)/$(BIN):$$PATH" PROMETHEUS_MULTIPROC_DIR="$(CURDIR)/var/metrics" \
		$(BIN)/honcho start -f Procfile

test: $(STAMP) services
	scripts/freeradius.sh install
	scripts/browser.sh install
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	-scripts/freeradius.sh stop
	rm -rf $(VENV) var .pytest_cache
