# solax-fleet: `make demo` runs the dashboard against the simulator; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Local runs default to DEBUG with a throwaway key; production sets these in the environment.
export DEBUG ?= true
# `make demo SIM_PROFILE=capped100`: the simulated cloud's profile (solax/simulator/profiles.py)
SIM_PROFILE ?= default

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py rundemo --sim-profile $(SIM_PROFILE)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy fleet solax
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m pytest tests/bench -s -q -p no:randomly $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) data
