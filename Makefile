# chatsite: `make run` serves the demo, `make test` runs the whole suite. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TEST_WORKERS ?= auto
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test lint cluster cluster-stop clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

run: $(VENV)/.installed
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo
	DEBUG=$${DEBUG:-1} $(PY) manage.py collectstatic --noinput -v0
	DEBUG=$${DEBUG:-1} $(PY) -m chatsite.serve --bind $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	@eval "$$($(PY) tests/detect_services.py)" && \
	  SECRET_KEY="$${SECRET_KEY:-insecure-test-only-key-0123456789abcdefghijklmnop}" DEBUG=0 \
	  $(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# ruff (lint and format check) and mypy with django-stubs; configuration in pyproject.toml.
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(VENV)/bin/mypy accounts rooms chatsite

# Several processes behind nginx on loopback (docs/operations.md): N chatsite processes on
# 127.0.0.1:$(FIRST_BACKEND_PORT).., nginx on PORT (8080 unless PORT is given), against the
# REDIS_URL and DATABASE_URL of the environment (both required). Pids and logs in run/cluster/.
N ?= 2
FIRST_BACKEND_PORT ?= 8001
CLUSTER_PORT = $(if $(filter file,$(origin PORT)),8080,$(PORT))

cluster: $(VENV)/.installed
	$(PY) deploy/cluster.py start --processes $(N) --port $(CLUSTER_PORT) --first-backend-port $(FIRST_BACKEND_PORT)

cluster-stop:
	$(PYTHON) deploy/cluster.py stop

clean:
	rm -rf $(VENV) db.sqlite3 test-db.sqlite3 staticfiles run
