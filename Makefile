# Everyday commands. Each target makes sure .venv is there and up to date with pyproject.toml.
#   make run              the whole system here (NATS, PostgreSQL, the three services)
#   make test ARGS=-x     the tests, with extra pytest arguments

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: venv run test lint bench

venv: $(STAMP)

# Reinstall only when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -e '.[dev]'
	touch $(STAMP)

run: venv
	$(VENV)/bin/sixstep run $(ARGS)

test: venv
	$(VENV)/bin/python -m pytest -q $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(VENV)/bin/python benchmarks/run_all.py $(ARGS)
