# MySpinBot: `make run` serves the whole system, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ASSETS := static/dist/.built
ASSET_SOURCES := package.json package-lock.json static/build.mjs $(shell find static/src templates -type f 2>/dev/null)

.PHONY: install run test test-comfyui test-image bench lint clean

install: $(INSTALLED) $(ASSETS)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(ASSETS): $(ASSET_SOURCES)
	npm ci --no-audit --no-fund --loglevel=error
	npm run build
	touch $@

run: install
	$(PY) app.py

test: install
	$(PY) -m pytest

# Opt-in: the engine tests against a real ComfyUI checkout, run on the CPU from its own
# environment (built once under .cache/). make test-comfyui COMFYUI=/path/to/ComfyUI
COMFYUI ?=
COMFYUI_VENV ?= .cache/comfyui-venv

test-comfyui: install
	@test -n "$(COMFYUI)" || { echo "usage: make test-comfyui COMFYUI=/path/to/ComfyUI" >&2; exit 2; }
	tests/engines/build_comfyui_venv.sh "$(COMFYUI_VENV)" "$(COMFYUI)"
	MYSPINBOT_TEST_COMFYUI="$(abspath $(COMFYUI))" \
	MYSPINBOT_TEST_COMFYUI_PYTHON="$(abspath $(COMFYUI_VENV))/bin/python" \
	$(PY) -m pytest -m comfyui tests/engines tests/test_standin_conformance.py

# Opt-in: build ops/Dockerfile with podman (or Docker) and run the image: one container,
# worker replicas on an external Redis, the compose stack (tests/image/run.sh says how).
test-image: install
	tests/image/run.sh

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) node_modules static/dist test-artifacts
