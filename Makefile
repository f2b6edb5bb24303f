# physml — one-command set-up. Every target creates the venv and installs on first use only
# (the stamp file is refreshed when pyproject.toml changes), so a second run reinstalls nothing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.physml-installed
PROFILE ?= default
WORKERS ?=
# JAX's persistent compilation cache: kernels compiled once (in a test, a smoke render, a report)
# are loaded, not recompiled, by every later process of any target. Delete .cache/ to reset it.
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0.2
# OpenBLAS threads sleep at once after a call instead of spinning 0.1-0.2 s against whatever runs
# next (see lib/physml/__init__.py): interleaved timings stay fair in every process.
export OPENBLAS_THREAD_TIMEOUT ?= 4

.PHONY: install reports smoke test lint lab mutate clean-reports help

help:
	@echo "make reports   render every notebook (default params) into reports/, with reports/index.html"
	@echo "make test      lint + the whole test suite (includes a smoke render of every notebook)"
	@echo "physml scoreboard   the physics / ML / hybrid verdicts of every study (after make reports)"
	@echo "make smoke     render every notebook with its smoke params"
	@echo "make lab       JupyterLab on notebooks/ with the physml kernel"
	@echo "make mutate MODULE=lib/physml/stats.py TESTS=tests/test_stats.py   mutants the tests miss"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# rfc3987-syntax (an optional extra of jsonschema that nbformat pulls in) compiles ~38 Earley
	@# grammars when imported: 3-7 s in every process that imports nbformat, twice per render.
	@# No notebook schema uses the iri formats it checks (python-jsonschema/jsonschema#1428).
	$(BIN)/python -m pip uninstall --quiet -y rfc3987-syntax
	$(BIN)/python -m ipykernel install --sys-prefix --name physml --display-name "physml (venv)"
	@touch $(STAMP)

install: $(STAMP)

reports: $(STAMP)
	$(BIN)/physml render --profile $(PROFILE) $(if $(WORKERS),--workers $(WORKERS))

smoke: $(STAMP)
	$(BIN)/physml render --profile smoke

lint: $(STAMP)
	$(BIN)/ruff check lib tests tools

# two workers (pytest-xdist); a study's notebooks render in order on one worker (loadgroup).
# The two workers fill the two cores: one BLAS/OpenMP thread each (torch follows OMP), or every
# small matrix op of both oversubscribes them. numba's and JAX's thread pools are left as they are.
test: $(STAMP) lint
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	  $(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25

# one-operator mutants of MODULE that TESTS do not notice (tools/mutate.py; rewrites MODULE in
# place and restores it: run on a clean checkout)
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py $(MODULE) $(TESTS)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

clean-reports:
	rm -rf reports
