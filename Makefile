# genomorph: `make demo` runs the main job, `make test` runs the tests. Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.genomorph-installed
export GENOMORPH_DATA ?= $(CURDIR)/data
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test docs docs-check readme export clean-nbs execute

$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install genomorph with its dependencies

demo: $(STAMP)  ## run the main job on the built-in synthetic data
	$(BIN)/genomorph demo --out $(GENOMORPH_DATA)/demo

test: $(STAMP)  ## nbdev_test on every notebook (slow/cuda cells skipped) + clean/export/README/docs checks
	$(BIN)/python .ci/nbtools.py test --docs

docs: $(STAMP)  ## HTML pages for every notebook in _docs_check/ (no Quarto needed)
	$(BIN)/python .ci/nbtools.py docs

docs-check: docs  ## docs + page assertions + a headless Chromium screenshot of the index
	$(BIN)/python .ci/nbtools.py docs-assert
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || true; }
	$(BIN)/python .ci/nbtools.py screenshot

execute: $(STAMP)  ## re-run every notebook in place, keeping outputs (ONLY=regex; GENOMORPH_EXEC_FLAGS=slow,cuda runs flagged cells too; GENOMORPH_EXEC_CELLS=ID,... also those flagged cells, by id)
	$(BIN)/python .ci/nbtools.py execute "$(ONLY)"

readme: $(STAMP)  ## README.md from nbs/index.ipynb
	$(BIN)/python .ci/nbtools.py readme

export: $(STAMP)  ## nbs/ -> genomorph/, clean notebooks, README
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/python .ci/nbtools.py readme
