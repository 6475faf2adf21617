# flokoa-controller — developer entry points.
# `make dev`  : run the operator against the embedded dev cluster (envtest + fake providers).
# `make test` : create .venv, install everything, run every gate and the test suite.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CHART   = charts/flokoa-controller
STAMP   = $(VENV)/.installed

.PHONY: all venv dev test lint typecheck contracts pytest manifests docs prometheus-rules run envtest bench bench-smoke clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

dev: $(STAMP)  ## Run the operator on the embedded dev cluster.
	$(BIN)/flokoa-controller dev

run: $(STAMP)  ## Run the operator against $$KUBECONFIG.
	$(BIN)/flokoa-controller run

envtest: $(STAMP)  ## Start only the in-memory API server.
	$(BIN)/flokoa-controller envtest --port 0 --kubeconfig-out .envtest.kubeconfig

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict flokoa_controller

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

BENCH_ARGS ?=
bench: $(STAMP)  ## Benchmarks vs the limit and kopf at N=10,000, 3 rounds of the throughput scenarios (~50 min).
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python hack/bench/run.py --n 10000 --kopf-n 2000 --rotations 1000 --rounds 3 --plot docs/benchmarks-latency.png $(BENCH_ARGS)

bench-smoke: $(STAMP)  ## Every benchmark scenario at a small N; asserts correctness, never timings.
	$(BIN)/pytest -q tests/bench $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
