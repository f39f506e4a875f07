# solax-fleet: `make demo` runs the dashboard against the simulator; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Local runs default to DEBUG with a throwaway key; production sets these in the environment.
export DEBUG ?= true
# `make demo SIM_PROFILE=capped100`: the simulated cloud's profile (solax/simulator/profiles.py)
SIM_PROFILE ?= default

# `make demo PORT=8100 SIM_PORT=8766` runs the demo on other ports.
PORT ?= 8000
SIM_PORT ?= 8765

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --simulator http://127.0.0.1:$(SIM_PORT)
	$(PY) manage.py rundemo --port $(PORT) --sim-port $(SIM_PORT) --sim-profile $(SIM_PROFILE)

# A local .env with DEBUG=true, so that `.venv/bin/python manage.py ...` outside make runs like the
# demo. Made once, never overwritten; production sets its variables in the environment instead.
.env:
	printf '# Made by `make demo` for local runs; every variable is in .env.example.\nDEBUG=true\n' > .env

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy fleet solax
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m pytest tests/bench -s -q -p no:randomly $(PYTEST_ARGS)

# data/ holds the database, the broker's folders and the simulator's cloud: removing it resets all three.
clean:
	rm -rf $(VENV) data
