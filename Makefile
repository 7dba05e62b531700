# ecs-watchdog. `make demo` and `make test` work on a fresh clone: they install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Builds persist outside the clone so repeated runs (and CI on the same machine) are incremental.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/ecs-watchdog/target
VENV := .venv
PYTHON := $(VENV)/bin/python
export WATCHDOG_PYTHON := $(CURDIR)/$(PYTHON)
export MONITOR_BIN := $(CARGO_TARGET_DIR)/debug/monitor
CARGO := cargo
ifeq ($(CI),true)
  export CARGO_TERM_COLOR := never
endif

.PHONY: help setup demo test unit fmt clippy monitor clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed ## Create .venv with the pinned Python tools (moto)

monitor:
	$(CARGO) build --locked -p monitor

demo: setup monitor ## Run the monitor on a real-shaped incident against the local emulator
	$(CARGO) run --locked --quiet -p watchdog-tests --bin demo

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

test: setup fmt clippy monitor ## Run every check and test
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --workspace --no-fail-fast; \
	else \
		$(CARGO) test --locked --workspace --no-fail-fast; \
	fi

unit: ## Only the library's unit tests (seconds, no emulator)
	$(CARGO) test --locked -p ecs-watchdog

clean: ## Remove .venv (the cargo target directory is shared: rm -rf $(CARGO_TARGET_DIR))
	rm -rf $(VENV)
