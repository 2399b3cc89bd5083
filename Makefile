# SecureMLWorkspace operator. `make test` is the one command CI and contributors run.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
PORT ?= 8443
CLUSTER_DIR ?= $(abspath .cache/cluster)

.PHONY: help venv testbin helm promtool chart-crds chart-lint lint typecheck unit integration test crds argocd-cm lock image cluster-up cluster-down run emulator demo bench bench-conflicts bench-scale chaos clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Bytecode for `python -OO`, as the operator runs (Dockerfile): without it every start compiles the
# SDKs' modules in memory (PYTHONDONTWRITEBYTECODE), a few hundred MiB of RSS that stays.
$(VENV)/.optimized: $(VENV)/.installed
	$(PY) -OO -m compileall -q -j 0 $(VENV)/lib
	touch $@

venv: $(VENV)/.optimized ## Create .venv with the operator and its dev tools

testbin: ## Build (once) and cache kube-apiserver and etcd from their Go modules
	@$(PYTHON) hack/testbin.py

helm: ## Build (once) and cache helm from its Go module; print its path
	@$(PYTHON) hack/helm.py

promtool: ## Build (once) and cache promtool (checks and tests the chart's alerts) from its Go module; print its path
	@$(PYTHON) hack/promtool.py

chart-crds: ## Copy the generated crds/ into the Helm chart (after `make crds`)
	$(PYTHON) hack/sync_chart_crds.py

chart-lint: helm ## helm lint --strict the chart
	$$($(PYTHON) hack/helm.py) lint --strict charts/secureml-operator

lint: venv ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv ## mypy on the operator package
	$(VENV)/bin/mypy

unit: venv ## Fast tests: no control plane
	$(PY) -m pytest -m "not integration" -q

integration: venv testbin helm promtool ## Tests against a real kube-apiserver + etcd
	$(PY) -m pytest -m integration -q

test: lint typecheck venv testbin helm promtool ## Lint, type check, unit and integration tests
	$(PY) -m pytest -q

crds: venv ## Regenerate crds/ and docs/api.md from the API models, and the chart's copy
	$(PY) -m secureml_operator.api.crd
	$(PYTHON) hack/sync_chart_crds.py

argocd-cm: venv ## Regenerate gitops/argocd/argocd-cm.yaml from gitops/argocd/health.lua
	PYTHONPATH=tests $(PY) -m gitops

lock: ## Regenerate requirements.lock (the image's hash-pinned dependencies) from pyproject.toml
	$(PYTHON) -m venv .cache/piptools && .cache/piptools/bin/pip install --quiet pip-tools==7.6.2
	env -u PIP_FIND_LINKS CUSTOM_COMPILE_COMMAND="make lock" .cache/piptools/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-find-links --no-emit-index-url $(LOCK_FLAGS) --output-file requirements.lock pyproject.toml

image: ## Build the OCI image with buildah on a Debian base made by mmdebstrap (installs them if missing); print its size
	@$(PYTHON) hack/image.py

cluster-up: venv testbin ## Start a local control plane in the background (kubeconfig in .cache/cluster)
	@PYTHONPATH=tests $(PY) -m kubeharness up --dir $(CLUSTER_DIR)

cluster-down: venv ## Stop the local control plane started by cluster-up
	@PYTHONPATH=tests $(PY) -m kubeharness down --dir $(CLUSTER_DIR)

run: venv ## Run the operator in the foreground against KUBECONFIG (cloud from AZURE_CLOUD / SMLW_ARM_ENDPOINT)
	$(PY) -OO -m secureml_operator --standalone --liveness http://127.0.0.1:8080/healthz

emulator: venv ## Run the ARM emulator in the foreground (PORT=8443) and print the environment clients need
	PYTHONPATH=tests $(PY) -m armemu --port $(PORT)

demo: venv testbin ## Control plane + ARM emulator + operator: apply an example, drift Azure, watch it corrected
	$(PY) hack/demo.py

bench: venv testbin ## Print ARM calls to Ready and per drift sweep for every example
	$(PY) bench/arm_calls.py

bench-conflicts: venv testbin ## Print ARM calls to Ready per example, operation conflicts off and on (OPERATION_SECONDS=1)
	$(PY) bench/conflicts.py $(if $(OPERATION_SECONDS),--seconds $(OPERATION_SECONDS))

bench-scale: venv testbin ## COUNT workspaces (1000) over SUBSCRIPTIONS (1) with ARM's throttling, MINUTES (5) of steady state: Ready, ARM calls, sweeps, drift, operator CPU/RSS
	$(PY) bench/scale.py $(if $(COUNT),--count $(COUNT)) $(if $(SUBSCRIPTIONS),--subscriptions $(SUBSCRIPTIONS)) $(if $(MINUTES),--minutes $(MINUTES)) $(SCALE_ARGS)

chaos: venv testbin ## Crash the operator, fault ARM, restart the kube-apiserver (examples 2, 4; RUNS=25): print what went wrong
	$(PY) bench/chaos.py $(if $(RUNS),--runs $(RUNS))

clean: ## Remove the venv and local state (the testbin cache stays)
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
