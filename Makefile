# Everyday commands. Each target makes sure .venv is there and up to date with pyproject.toml.
#   make run              the whole system here (NATS, PostgreSQL, the three services)
#   make test ARGS=-x     the tests, with extra pytest arguments
#   make lint             ruff, and the import contracts (also checked by make test)

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
ARGS ?=
# make test prints its 20 slowest steps (the suite must stay inside CI's 15 minutes).
# make test's pytest workers (CI's way: 3; two took 18.6 min on 2026-12-07, the two cores at
# 1.5 busy: the workers wait on their servers): each worker has its own NATS, PostgreSQL
# and chromium, a file staying on one worker (its module fixtures are shared). In one process
# the suite waits on its servers most of the time (37 % of a core, 2026-12-07) and took 29 min
# in stop 51's CI, against CI's 15; TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3

.PHONY: venv run test lint bench

venv: $(STAMP)

# Reinstall only when pyproject.toml is newer than the last install. uv installs the same
# packages as pip (the same resolution of pyproject.toml's ranges) in ~15 s instead of ~95 s,
# a minute of CI's 15; where uv cannot be had, pip does it (and compiles, as pip does).
# The packages are compiled to bytecode once, here: uv leaves them as sources by default, and
# with PYTHONDONTWRITEBYTECODE=1 (set on the CI machines) every Python process of a run, the
# test process and each `sixstep`, `make run` and service process the tests start, compiled
# every module it imported from source again: ~1 s of CPU for a `sixstep` command, ~1.9 s for
# make run's three services, each time.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	( $(VENV)/bin/python -m pip install -q uv && \
	  $(VENV)/bin/uv pip install --python $(VENV)/bin/python --compile-bytecode -e '.[dev]' ) || \
	  $(VENV)/bin/python -m pip install -e '.[dev]'
	touch $(STAMP)

run: venv
	$(VENV)/bin/python -m tools.run $(ARGS)

# The browser tests (tests/pages) drive Debian's chromium; its Chinese fonts make the pages'
# screenshots readable. The alert rules are checked by promtool, from Debian's prometheus
# package. apt-get installs them where they are missing.
test: venv
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
	  (apt-get update && apt-get install -y --no-install-recommends chromium fonts-noto-cjk)
	@command -v promtool >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends prometheus)
	$(VENV)/bin/python -m compileall -q shared services tools tests benchmarks
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20 $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

bench: venv
	$(VENV)/bin/python benchmarks/run_all.py $(ARGS)
