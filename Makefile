# Two entry points for a newcomer: `make up` (the main job) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
# A local file backend: no Pulumi Cloud account needed. State stays in this folder.
PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
export PULUMI_BACKEND_URL

.PHONY: venv dev-venv up plan test lint typecheck unit bench clean haproxy e2e-haproxy \
	engine cluster-up cluster-down cluster-status charts

# The program's own dependencies (what `pulumi up` and the provider host import)...
$(BIN)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# ... and, for the tests only, linters, type checker and test tools on top.
$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.runtime
dev-venv: $(BIN)/.dev

# The Pulumi CLI on PATH, else the one `make engine` builds (see `up`).
ENGINE_PULUMI := $(CURDIR)/.engine/bin/pulumi

## up: create or update the instance of stack $(STACK) with `pulumi up`. First checks,
## creating nothing, what the stack needs (tools/preflight.py: settings, AWS
## credentials), then builds the Pulumi CLI from Go modules if none is installed.
up: venv
	@$(BIN)/python -m tools.preflight --stack $(STACK)
	@if ! command -v pulumi >/dev/null && [ ! -x "$(ENGINE_PULUMI)" ]; then \
	  echo "note: no Pulumi CLI installed: building one from Go modules (make engine; the"; \
	  echo "first build takes about 30 minutes on 2 cores, later ones seconds)"; \
	  $(MAKE) --no-print-directory engine; \
	fi
	@pulumi=$$(command -v pulumi || echo "$(ENGINE_PULUMI)"); \
	version=$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("pulumi-kubernetes"))'); \
	if [ "$$pulumi" = "$(ENGINE_PULUMI)" ] && \
	  ! "$$pulumi" plugin ls 2>/dev/null | grep -q "^kubernetes .*$$version"; then \
	  "$$pulumi" plugin install resource kubernetes "v$$version" \
	    --file "$(CURDIR)/.engine/bin/pulumi-resource-kubernetes"; \
	fi; \
	mkdir -p .pulumi-state && \
	"$$pulumi" stack select --create --secrets-provider passphrase $(STACK) && \
	"$$pulumi" up --stack $(STACK)

## plan: what `pulumi up` would register for stack $(STACK), offline (no CLI, no cloud)
plan: venv
	$(BIN)/python -m tools.plan --stack $(STACK)

## test: lint, type-check and run every test (the command CI runs)
test: dev-venv lint typecheck unit

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest

## haproxy: the HAProxy LTS release the gateway image pins, into a cache outside the checkout
haproxy:
	bash tools/haproxy/build.sh

## cortex: Cortex (Apache-2.0) from Go modules, for the end-to-end test of the metrics data
## path; cached outside the checkout; prints the binary's path (set OPSTRACE_CORTEX to it)
.PHONY: cortex
cortex:
	bash tools/cortex/build.sh

## e2e-haproxy: the end-to-end tests against Debian's haproxy and against the pinned LTS
e2e-haproxy: dev-venv
	@lts="$$(bash tools/haproxy/build.sh | tail -n 1)"; \
	for binary in /usr/sbin/haproxy "$$lts"; do \
	  echo "== $$("$$binary" -v | sed -n 1p)"; \
	  OPSTRACE_HAPROXY="$$binary" $(BIN)/pytest -q tests/e2e || exit 1; \
	done

## bench: benchmark figures (program scale, tokens, gateway, tenant changes through the
## engine on the local cluster); SMOKE=1: tiny sizes, that it runs
bench: dev-venv engine
	$(BIN)/python -m bench.program_bench $(if $(SMOKE),--smoke)
	$(BIN)/python -m bench.gateway_bench $(if $(SMOKE),--smoke)
	$(BIN)/python -m bench.tenant_change_bench $(if $(SMOKE),--smoke)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

## engine: build the real Pulumi CLI, plugins and a Kubernetes control plane from Go
## modules into .engine/bin (cached outside the checkout; see engine/build.sh)
engine:
	bash engine/build.sh

## cluster-up / cluster-down / cluster-status: the local test cluster (tools/cluster/)
cluster-up: venv engine
	$(BIN)/python -m tools.cluster up

cluster-down: venv
	$(BIN)/python -m tools.cluster down

cluster-status: venv
	$(BIN)/python -m tools.cluster status

## charts: every pinned chart rendered with the program's values, checked and applied to
## the local cluster (tools/charts.py; needs the chart repositories or local copies, and
## make cluster-up). CHARTS_ARGS="--chart loki --no-apply" narrows it. Not run by CI.
charts: dev-venv
	bash engine/helm/build.sh >/dev/null
	$(BIN)/python -m tools.charts $(CHARTS_ARGS)
