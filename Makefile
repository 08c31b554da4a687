# adtrack: the two commands are `make run` and `make test` (see README.md).
# Needs only make, bash and python3 (>= 3.11); everything else is installed on demand.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# The interpreter .venv is made with: the system's optimised python3 when it is usable, else the
# python3 on PATH (see scripts/pick_python.sh). An existing .venv keeps the one it was made with.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell bash scripts/pick_python.sh)
endif
VENV := .venv
BIN := $(VENV)/bin
VENV_PY := $(BIN)/python
# Stamps record which dependency set is installed; they go stale when these files change.
DEPS_FILES := pyproject.toml constraints.txt
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
PIP_INSTALL := $(VENV_PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

HOST ?= 127.0.0.1
PORT ?= 8000
TRACKING_PORT ?=
ADTRACK_DATA_DIR ?= $(CURDIR)/data

PYTEST_ARGS ?=
BENCH_ARGS ?=
ARTIFACTS := test-artifacts

# Prints "tests: N passed, N failed, N skipped" from JUnit XML reports (summed).
JUNIT_COUNTS := import sys, xml.etree.ElementTree as E; \
	rs = [E.parse(f).getroot() for f in sys.argv[1:]]; \
	s = [t for r in rs for t in ([r] if r.tag == "testsuite" else list(r.iter("testsuite")))]; \
	n = lambda key: sum(int(x.get(key, 0)) for x in s); \
	f = n("failures") + n("errors"); k = n("skipped"); \
	print("tests: %d passed, %d failed, %d skipped" % (n("tests") - f - k, f, k))

.PHONY: help run test lint format typecheck bench services install install-test lock clean

help: ## list the targets
	@echo "adtrack — make targets:"
	grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 24
	echo
	echo "Variables: HOST=$(HOST) PORT=$(PORT) TRACKING_PORT (default PORT+1)"
	echo "           ADTRACK_DATA_DIR=$(ADTRACK_DATA_DIR) PYTEST_ARGS=... BENCH_ARGS=..."

# --- the two commands ----------------------------------------------------------------------------

run: $(STAMP_RUN) ## run the server on the embedded default (data in ./data)
	@echo "==> adtrack serve on http://$(HOST):$(PORT) (data in $(ADTRACK_DATA_DIR))"
	export ADTRACK_DATA_DIR="$(ADTRACK_DATA_DIR)"
	exec $(BIN)/adtrack serve --host $(HOST) --port $(PORT) $(if $(TRACKING_PORT),--tracking-port $(TRACKING_PORT))

test: $(STAMP_TEST) ## start the services, then lint, type-check and run the whole test suite
	@declare -a names=() results=()
	failed=0
	step() {  # step NAME COMMAND...: run one step, remember how it went, carry on
	  local name=$$1 rc=0; shift
	  printf '\n==> %s\n' "$$name"
	  "$$@" || rc=$$?
	  names+=("$$name")
	  if ((rc == 0)); then results+=("ok"); else results+=("FAILED (exit $$rc)"); failed=1; fi
	}
	step "services"          bash scripts/ensure_services.sh
	step "ruff check"        $(BIN)/ruff check --output-format concise src tests bench
	step "ruff format"       $(BIN)/ruff format --check --output-format concise src tests bench
	step "mypy"              $(BIN)/mypy
	step "import contracts"  $(BIN)/lint-imports --no-cache
	mkdir -p $(ARTIFACTS)
	rm -f $(ARTIFACTS)/junit-*.xml
	# Two parts: the tests that measure timing or load (marked serial) run alone, after the
	# rest has run on two workers (one per core), whole files at a time.
	step "pytest"            $(BIN)/pytest -n 2 --dist loadfile -m "not serial" \
	                           --junitxml=$(ARTIFACTS)/junit-parallel.xml $(PYTEST_ARGS)
	if [[ $${results[-1]} == "FAILED (exit 5)" ]]; then results[-1]="ok (none selected)"; fi
	step "pytest serial"     $(BIN)/pytest -m serial --junitxml=$(ARTIFACTS)/junit-serial.xml $(PYTEST_ARGS)
	if [[ $${results[-1]} == "FAILED (exit 5)" ]]; then results[-1]="ok (none selected)"; fi
	printf '\n==> summary\n'
	for i in "$${!names[@]}"; do printf '  %-17s %s\n' "$${names[$$i]}" "$${results[$$i]}"; done
	# One closing line with the counts, read from pytest's JUnit reports.
	reports=($$(ls $(ARTIFACTS)/junit-*.xml 2>/dev/null || true))
	if (($${#reports[@]})); then
	  $(VENV_PY) -c '$(JUNIT_COUNTS)' "$${reports[@]}" || true
	else
	  echo "tests: no report (pytest did not run to the end)"
	fi
	exit $$failed

# --- pieces of the test command ------------------------------------------------------------------

services: ## start (installing if needed) PostgreSQL, NATS JetStream and chromium
	@bash scripts/ensure_services.sh

lint: $(STAMP_TEST) ## ruff check and ruff format --check
	@$(BIN)/ruff check --output-format concise src tests bench
	$(BIN)/ruff format --check --output-format concise src tests bench

format: $(STAMP_TEST) ## apply ruff's fixes and formatting
	@$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

typecheck: $(STAMP_TEST) ## mypy (configuration in pyproject.toml)
	@$(BIN)/mypy

bench: $(STAMP_TEST) ## run the benchmarks in bench/ (installs nginx-light and wrk if missing)
	@bash scripts/ensure_services.sh --bench
	shopt -s nullglob
	benches=(bench/*.py)
	if (($${#benches[@]} == 0)); then echo "no benchmarks in bench/ yet"; exit 0; fi
	for b in "$${benches[@]}"; do
	  printf '\n==> %s\n' "$$b"
	  $(VENV_PY) "$$b" $(BENCH_ARGS)
	done

clean: ## remove caches and test artifacts (keeps .venv and ./data)
	@rm -rf $(ARTIFACTS) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	find src tests bench -name __pycache__ -type d -prune -exec rm -rf {} +

# --- environment ---------------------------------------------------------------------------------

$(VENV_PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
	  echo "error: adtrack needs Python >= 3.11; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." >&2
	  echo "       Run with PYTHON=/path/to/python3.11 (or newer)." >&2
	  exit 1
	}
	echo "==> creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	if ! $(PYTHON) -m venv $(VENV) 2>/dev/null; then
	  # Debian ships venv support separately (python3-venv); install it and try again.
	  rm -rf $(VENV)
	  if command -v apt-get >/dev/null 2>&1; then
	    sudo=""; [[ $$(id -u) -eq 0 ]] || sudo="sudo"
	    echo "==> installing python3-venv (Debian)"
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q update >/dev/null
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q install -y python3-venv >/dev/null
	  fi
	  $(PYTHON) -m venv $(VENV)
	fi
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check --upgrade pip

$(STAMP_RUN): $(DEPS_FILES) | $(VENV_PY)
	@echo "==> installing adtrack into $(VENV)"
	$(PIP_INSTALL) -e .
	touch $@

# The test set includes the run set, so it refreshes both stamps.
$(STAMP_TEST): $(DEPS_FILES) | $(VENV_PY)
	@echo "==> installing adtrack with test dependencies into $(VENV)"
	$(PIP_INSTALL) -e '.[test]'
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN) ## create .venv and install adtrack (only when dependencies changed)

install-test: $(STAMP_TEST) ## same, with the test dependencies

lock: $(STAMP_TEST) ## rewrite constraints.txt from what .venv has installed
	@$(VENV_PY) -m pip freeze --exclude-editable --disable-pip-version-check > constraints.txt
	touch $(STAMP_RUN) $(STAMP_TEST)
	echo "==> constraints.txt: $$(wc -l < constraints.txt) pinned packages"
