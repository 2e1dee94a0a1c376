# MySpinBot: `make run` serves the whole system, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ASSETS := static/dist/.built
ASSET_SOURCES := package.json package-lock.json static/build.mjs $(shell find static/src templates -type f 2>/dev/null)

.PHONY: install run test bench lint clean

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

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) node_modules static/dist test-artifacts
