# ecs-watchdog. `make demo` and `make test` work on a fresh clone: they install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Builds persist outside the clone so repeated runs (and CI on the same machine) are incremental.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/ecs-watchdog/target
VENV := .venv
PYTHON := $(VENV)/bin/python
VENV_SAM := .venv-sam
SAM := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV_SAM)/bin/sam
VENV_CHECKOV := .venv-checkov
export WATCHDOG_PYTHON := $(CURDIR)/$(PYTHON)
export MONITOR_BIN := $(CARGO_TARGET_DIR)/debug/monitor
CARGO := cargo
ifeq ($(CI),true)
  export CARGO_TERM_COLOR := never
endif

.PHONY: help setup demo test unit fmt clippy lint monitor build deploy bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV_SAM)/.installed: requirements-sam.txt
	python3 -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

$(VENV_CHECKOV)/.installed: requirements-checkov.txt
	python3 -m venv $(VENV_CHECKOV)
	$(VENV_CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

setup: $(VENV)/.installed ## Create .venv with the pinned Python tools (moto, cfn-lint, cargo-lambda)

monitor:
	$(CARGO) build --locked -p monitor

demo: setup monitor ## Run the monitor on a real-shaped incident against the local emulator
	$(CARGO) run --locked --quiet -p watchdog-tests --bin demo

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

lint: $(VENV)/.installed $(VENV_SAM)/.installed $(VENV_CHECKOV)/.installed ## cfn-lint, sam validate --lint and checkov on template.yaml
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml
	$(VENV_CHECKOV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --quiet --compact

build: $(VENV)/.installed $(VENV_SAM)/.installed ## sam build: the arm64 bootstrap, built with cargo-lambda
	@rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu || \
		{ echo "make build: cannot install the Rust target aarch64-unknown-linux-gnu (rustup target add failed), which Lambda's arm64 needs." >&2; exit 1; }
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM) build

deploy: build ## sam deploy --guided (needs AWS credentials)
	$(SAM) deploy --guided

test: setup fmt clippy lint monitor ## Run every check and test
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --workspace --no-fail-fast; \
	else \
		$(CARGO) test --locked --workspace --no-fail-fast; \
	fi

bench: setup ## Measure start-up, calls and memory per event, size; writes BENCHMARKS.md and target/bench/results.json
	$(CARGO) build --release --locked -p monitor
	$(CARGO) run --locked --quiet -p watchdog-tests --bin bench

unit: ## Only the library's unit tests (seconds, no emulator)
	$(CARGO) test --locked -p ecs-watchdog

clean: ## Remove the virtualenvs and .aws-sam (the cargo target directory is shared: rm -rf $(CARGO_TARGET_DIR))
	rm -rf $(VENV) $(VENV_SAM) $(VENV_CHECKOV) .aws-sam
