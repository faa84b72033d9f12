# Two entry points for a newcomer: `make up` (the main job) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# No STACK: the local instance (tools/local, stacks/Pulumi.local.yaml); STACK=dev or any
# other stack: the instance on AWS.
LOCAL_STACK := local
STACK ?= $(LOCAL_STACK)
# A local file backend: no Pulumi Cloud account needed. State stays in this folder.
PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
export PULUMI_BACKEND_URL

.PHONY: venv dev-venv up down plan test lint typecheck unit bench clean haproxy e2e-haproxy \
	engine cluster-up cluster-down cluster-status charts mutants

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

## up: with no STACK, the local instance, no AWS account needed (tools/local: builds
## what it needs, starts the local cluster and a Cortex, `pulumi up` of the stack `local`,
## prints curl lines). With STACK=name, create or update that instance on AWS with
## `pulumi up`: first checks, creating nothing, what the stack needs (tools/preflight.py:
## settings, AWS credentials), then builds the Pulumi CLI from Go modules if none is
## installed.
up: venv
ifeq ($(STACK),$(LOCAL_STACK))
	@$(BIN)/python -m tools.local up
else
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
endif

## down: remove the local instance: destroy its stack, stop its cluster, Cortex and every
## process of it, delete their files (the build caches stay). An AWS stack is destroyed
## with `pulumi destroy`, not here.
down: venv
ifeq ($(STACK),$(LOCAL_STACK))
	@$(BIN)/python -m tools.local down
else
	@echo "make down removes the local instance only; destroy stack $(STACK) with" \
	  "\`pulumi destroy --stack $(STACK)\` (docs/architecture.md: what destroy keeps)" >&2; \
	exit 2
endif

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
## path; cached outside the checkout, linked into .engine/bin (the tests find it there)
.PHONY: cortex
cortex:
	bash engine/build.sh cortex

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

## mutants: mutation testing (not in CI): mutmut mutates the pure security rules
## pyproject.toml names and runs the tests that cover each mutated function; then the short
## list of hand-written mutants of what mutmut cannot reach (devtools/mutants.py)
mutants: dev-venv
	@rm -rf mutants
	@$(BIN)/mutmut run >/dev/null 2>&1 || true
	@$(BIN)/mutmut export-cicd-stats >/dev/null && cat mutants/mutmut-cicd-stats.json
	@echo "mutmut: the survivors: $(BIN)/mutmut results; one: $(BIN)/mutmut show <name>"
	$(BIN)/python -m devtools.mutants

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache mutants

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
## the local cluster (devtools/chart_check.py; needs the chart repositories or local copies, and
## make cluster-up). CHARTS_ARGS="--chart loki --no-apply" narrows it. Not run by CI.
charts: dev-venv
	bash engine/build.sh helm >/dev/null
	$(BIN)/python -m devtools.chart_check $(CHARTS_ARGS)
