# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS := analyzer,demo,dev
APT_PACKAGES := prometheus prometheus-alertmanager nginx-light wrk chromium \
	podman buildah runc catatonit debootstrap
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test unit check lint typecheck pytest install system-deps lock bench clean fuzz compiled \
	pytest-compiled images pod-test

# Built without isolation, with the setuptools of the lock (setup.py only adds the compiled build).
$(STAMP): pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt setuptools
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt --no-build-isolation -e '.[$(EXTRAS)]'
	touch $@

install: $(STAMP)

# MLServer, a real model server for the integration tests, pins its own dependencies: its own venv.
MLSERVER_STAMP := .venv-mlserver/.installed-stamp
$(MLSERVER_STAMP): tests/mlserver/constraints.txt
	$(PYTHON) -m venv .venv-mlserver
	.venv-mlserver/bin/pip install --quiet --disable-pip-version-check -r tests/mlserver/constraints.txt
	touch $@

# Debian packages the integration tests and benchmarks start (Prometheus, nginx, wrk), and what
# builds and runs the images (podman with runc, buildah, catatonit for pods, debootstrap).
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
	$(BIN)/pytest -m 'not pods'

# The Dockerfile's targets built with podman as localhost/modeltap-{sidecar,analyzer,demo}:ci, on
# a python:3.11-slim-bookworm equivalent bootstrapped from Debian packages (no registry is
# reachable in CI); ci/ holds the scripts and podman's settings, ~/.cache/modeltap the cache.
images: system-deps
	ci/build-images.sh

# What the images hold (tests/deploy/test_images.py), and the shipped manifests played as podman
# pods on them (tests/deploy/test_pods.py).
pod-test: images $(STAMP) system-deps
	MODELTAP_REQUIRE_IMAGES=1 $(BIN)/pytest -m pods tests/deploy/test_images.py tests/deploy/test_pods.py

# The request path compiled with mypyc (sidecar/compiled.py), as the container image ships it, in
# a copy of the tree: the checkout itself stays pure Python, so an edit is never shadowed by a
# stale build. The tests of everything compiled run again there, against the compiled modules.
COMPILED_TREE := build/compiled
COMPILED_TESTS := tests/sidecar tests/core/test_record.py tests/core/test_record_into.py tests/fuzz/test_http_server.py \
	tests/analyzer/test_numparse.py tests/analyzer/test_capture_template.py tests/analyzer/test_profile_stats.py \
	tests/analyzer/test_capture_columns.py tests/analyzer/test_object_batches.py \
	tests/integration/test_proxy_e2e.py tests/integration/test_proxy_limits.py \
	tests/integration/test_disk_cutoff.py tests/integration/test_sidecar_prometheus.py \
	tests/integration/test_mlserver.py tests/integration/test_privacy_e2e.py \
	tests/integration/test_delivery_s3.py tests/integration/test_variants_e2e.py \
	tests/integration/test_spool_budget.py tests/integration/test_sigkill_bound.py \
	tests/integration/test_llm_stream.py tests/analyzer/test_jsonrows.py

compiled: $(STAMP)
	rm -rf $(COMPILED_TREE) && mkdir -p $(COMPILED_TREE)
	cp -R sidecar analyzer modeltap harness tests ci pyproject.toml setup.py README.md $(COMPILED_TREE)/
	ln -s $(CURDIR)/.venv-mlserver $(COMPILED_TREE)/.venv-mlserver
	cd $(COMPILED_TREE) && MODELTAP_COMPILE=1 $(abspath $(BIN))/python setup.py build_ext --inplace \
	  > build.log 2>&1 || { tail -40 build.log; exit 1; }

pytest-compiled: compiled $(MLSERVER_STAMP) system-deps
	cd $(COMPILED_TREE) && MODELTAP_EXPECT_COMPILED=1 $(abspath $(BIN))/pytest $(COMPILED_TESTS)

test: lint typecheck pytest pytest-compiled pod-test

# The inner loop (about 75 s on 2 cores): lint and every test that starts no server (not `integration`)
# and runs no modeltap command in a child process (not `command`), on two pytest-xdist workers,
# the readers' fuzz tests on 50 examples instead of make test's 200.
unit: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	FUZZ_EXAMPLES=50 $(BIN)/pytest -q -n 2 -m 'not integration and not pods and not command'

check: test

# Re-lock after changing dependencies in pyproject.toml: a fresh venv, then freeze.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet setuptools
	.venv-lock/bin/pip install --quiet --no-build-isolation -e '.[$(EXTRAS)]'
	{ echo '# Lock of every package make installs; regenerate with `make lock` after changing pyproject.toml.'; \
	  .venv-lock/bin/pip freeze --all --exclude-editable | grep -Ev '^(modeltap|pip)=='; } > constraints.txt
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
