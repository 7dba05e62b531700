# ecs-watchdog. `make demo` and `make test` work on a fresh clone: they install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Builds persist outside the clone so repeated runs (and CI on the same machine) are incremental.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/ecs-watchdog/target
VENV := .venv
PYTHON := $(VENV)/bin/python
VENV_SAM := .venv-sam
SAM := SAM_CLI_TELEMETRY=0 $(VENV_SAM)/bin/sam
# sam validate wants a region and reads nothing from it offline: give it one only when the user's
# environment has none, and never override the user's region for build or deploy.
VALIDATE_REGION := --region $${AWS_REGION:-$${AWS_DEFAULT_REGION:-us-east-1}}
VENV_CHECKOV := .venv-checkov
VENV_BUILD := .venv-build
export WATCHDOG_PYTHON := $(CURDIR)/$(PYTHON)
export WATCHDOG_SAM_PYTHON := $(CURDIR)/$(VENV_SAM)/bin/python
export MONITOR_BIN := $(CARGO_TARGET_DIR)/debug/monitor
CARGO := cargo
# Every build is also `cargo clippy --all-targets -- -D warnings`: clippy-driver wraps rustc for
# the workspace's own crates (as `cargo clippy` does), so the dependencies compile once. A
# separate `cargo clippy` compiled all ~230 of them again in check mode, since cargo cannot reuse
# a build's artifacts for a check: minutes of a cold `make test` (BENCHMARKS.md, "First run").
# Exported to every debug cargo call (build, nextest, bench), so none rebuilds the members for a
# different wrapper; without rustup's clippy-driver, `make test` runs `cargo clippy` instead.
CLIPPY_DRIVER := $(shell rustup which clippy-driver 2>/dev/null)
ifneq ($(CLIPPY_DRIVER),)
  export RUSTC_WORKSPACE_WRAPPER := $(CLIPPY_DRIVER)
  export CLIPPY_ARGS := -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
endif
ifeq ($(CI),true)
  export CARGO_TERM_COLOR := never
endif

.PHONY: help setup demo test unit fmt clippy lint workspace build deploy deploy-cargo-lambda package package-check redrive bench clean

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

$(VENV_BUILD)/.installed: requirements-build.txt
	python3 -m venv $(VENV_BUILD)
	$(VENV_BUILD)/bin/pip install --quiet --disable-pip-version-check -r requirements-build.txt
	touch $@

$(VENV_CHECKOV)/.installed: requirements-checkov.txt
	python3 -m venv $(VENV_CHECKOV)
	$(VENV_CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

setup: $(VENV)/.installed ## Create .venv with the pinned Python tools (moto, cfn-lint)

# Every build of the workspace is this one command: the same targets, so the same features, so
# `make demo` after `make test` builds nothing again (`-p monitor` alone resolved other features
# and rebuilt the SDK for minutes).
workspace:
	$(CARGO) build --locked --workspace --all-targets

demo: setup workspace ## Run the monitor on a real-shaped incident against the local emulator
	$(CARGO_TARGET_DIR)/debug/demo

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

lint: $(VENV)/.installed $(VENV_SAM)/.installed $(VENV_CHECKOV)/.installed ## cfn-lint, sam validate --lint, checkov, and parliament on the rendered IAM policies of template.yaml and spoke.yaml
	$(VENV)/bin/cfn-lint template.yaml spoke.yaml
	$(SAM) validate --lint --template template.yaml $(VALIDATE_REGION)
	$(SAM) validate --lint --template spoke.yaml $(VALIDATE_REGION)
	$(VENV_CHECKOV)/bin/checkov --file template.yaml --file spoke.yaml --framework cloudformation --skip-download --quiet --compact
	$(VENV_SAM)/bin/python tests/lint_policies.py template.yaml
	$(VENV_SAM)/bin/python tests/lint_policies.py spoke.yaml

arm64-target:
	@rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu || \
		{ echo "make build: cannot install the Rust target aarch64-unknown-linux-gnu (rustup target add failed), which Lambda's arm64 needs." >&2; exit 1; }

build: $(VENV_BUILD)/.installed $(VENV_SAM)/.installed arm64-target ## sam build: the arm64 bootstrap, built with cargo-lambda
	PATH="$(CURDIR)/$(VENV_BUILD)/bin:$$PATH" env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS $(SAM) build

deploy: build ## sam deploy --guided (needs AWS credentials)
	$(SAM) deploy --guided

NAME ?= ecs-watchdog
deploy-cargo-lambda: $(VENV_BUILD)/.installed $(VENV_SAM)/.installed arm64-target ## Without CloudFormation: cargo lambda build + deploy, and the queues, rules, roles, mapping and the sweep's schedule (NAME=, PARAMS="K=V ...", EMAIL=)
	PATH="$(CURDIR)/$(VENV_BUILD)/bin:$$PATH" env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS $(CARGO) lambda build --release --arm64 --bin monitor
	PATH="$(CURDIR)/$(VENV_BUILD)/bin:$$PATH" env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS $(CARGO) lambda build --release --arm64 --bin sweep
	PATH="$(CURDIR)/$(VENV_BUILD)/bin:$$PATH" $(VENV_SAM)/bin/python scripts/deploy_cargo_lambda.py --name $(NAME) \
		$(foreach p,$(PARAMS),--param $(p)) $(if $(EMAIL),--email $(EMAIL))

# A release that deploys without a compiler (README, Deploy): both arm64 bootstraps in one cargo
# invocation (one feature resolution, so the second binary reuses the first one's crates), then
# dist/ written by scripts/package.py and checked by package-check.
DIST := dist
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
package: $(VENV)/.installed $(VENV_BUILD)/.installed $(VENV_SAM)/.installed arm64-target ## Build both arm64 functions and write dist/: zips, packaged.yaml, spoke.yaml, SHA256SUMS; then check it
	PATH="$(CURDIR)/$(VENV_BUILD)/bin:$$PATH" env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS $(CARGO) lambda build --release --arm64 --locked --bin monitor --bin sweep \
		--lambda-dir $(CARGO_TARGET_DIR)/lambda
	rm -rf $(DIST)
	$(PYTHON) scripts/package.py --dist $(DIST) \
		--monitor $(CARGO_TARGET_DIR)/lambda/monitor/bootstrap --sweep $(CARGO_TARGET_DIR)/lambda/sweep/bootstrap
	$(MAKE) --no-print-directory package-check

package-check: $(VENV)/.installed $(VENV_SAM)/.installed ## Check dist/: arm64 ELF bootstraps, zips and checksums, SAR metadata, cfn-lint, sam validate --lint
	$(PYTHON) scripts/check_package.py $(DIST) --version $(VERSION)
	$(VENV)/bin/cfn-lint $(DIST)/packaged.yaml $(DIST)/spoke.yaml
	$(SAM) validate --lint --template $(DIST)/packaged.yaml $(VALIDATE_REGION)

FROM ?= rules
redrive: $(VENV)/.installed ## Move a dead-letter queue's messages back to the checks queue (STACK=, FROM=rules|checks)
	@test -n "$(STACK)" || { echo "make redrive: set STACK=<stack name> (and FROM=rules or FROM=checks)" >&2; exit 2; }
	$(PYTHON) scripts/redrive.py --stack $(STACK) --from $(FROM)

# The linters' virtualenvs install (network-bound) while cargo builds (CPU-bound).
test: setup fmt ## Run every check and test
	$(MAKE) --no-print-directory -j2 lint workspace
	$(if $(CLIPPY_DRIVER),,$(MAKE) --no-print-directory clippy)
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --workspace --no-fail-fast; \
	else \
		$(CARGO) test --locked --workspace --no-fail-fast; \
	fi

# BENCH_ONLY=calls and BENCH_ONLY=storm-messages count calls and messages, which do not depend on
# the profile: they run the debug build of `make workspace`, without the (cold, long) release build.
bench: setup workspace ## Measure start-up, calls and memory per event, size; writes BENCHMARKS.md and target/bench/results.json (BENCH_ONLY=calls: the ledger's AWS calls alone)
	@case "$(BENCH_ONLY)" in calls|storm-messages) ;; *) $(CARGO) build --release --locked -p monitor -p sweep ;; esac
	BENCH_ONLY=$(BENCH_ONLY) $(CARGO_TARGET_DIR)/debug/bench

unit: ## Only the library's unit tests (seconds, no emulator)
	$(CARGO) test --locked -p ecs-watchdog

clean: ## Remove the virtualenvs and .aws-sam (the cargo target directory is shared: rm -rf $(CARGO_TARGET_DIR))
	rm -rf $(VENV) $(VENV_SAM) $(VENV_CHECKOV) $(VENV_BUILD) .aws-sam $(DIST)
