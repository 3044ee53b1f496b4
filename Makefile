# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS := analyzer,demo,dev
APT_PACKAGES := prometheus prometheus-alertmanager nginx-light wrk chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test check lint typecheck pytest install system-deps lock bench clean fuzz

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

install: $(STAMP)

# MLServer, a real model server for the integration tests, pins its own dependencies: its own venv.
MLSERVER_STAMP := .venv-mlserver/.installed-stamp
$(MLSERVER_STAMP): tests/mlserver/constraints.txt
	$(PYTHON) -m venv .venv-mlserver
	.venv-mlserver/bin/pip install --quiet --disable-pip-version-check -r tests/mlserver/constraints.txt
	touch $@

# Debian packages the integration tests and benchmarks start (Prometheus, nginx, wrk).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

run: $(STAMP)
	$(BIN)/modeltap demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(MLSERVER_STAMP) system-deps
	$(BIN)/pytest

test: lint typecheck pytest

check: test

# Re-lock after changing dependencies in pyproject.toml: a fresh venv, then freeze.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[$(EXTRAS)]'
	{ echo '# Lock of every package make installs; regenerate with `make lock` after changing pyproject.toml.'; \
	  .venv-lock/bin/pip freeze --exclude-editable | grep -v '^modeltap'; } > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .venv-mlserver .venv-fuzz .mypy_cache .ruff_cache .pytest_cache run

# Coverage-guided fuzzing of the parsers of untrusted bytes (fuzz/README.md). atheris ships a
# manylinux wheel for CPython 3.11, but it stays out of the default install: its own venv.
FUZZ_STAMP := .venv-fuzz/.installed-stamp
FUZZ_SECONDS ?= 60
$(FUZZ_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv .venv-fuzz
	.venv-fuzz/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[analyzer]' 'atheris==3.0.0'
	touch $@

fuzz: $(FUZZ_STAMP)
	.venv-fuzz/bin/python fuzz/run.py --seconds $(FUZZ_SECONDS) $(FUZZ_HARNESS)
