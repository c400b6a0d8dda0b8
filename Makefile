# ARC — the two set-up commands are `make run` and `make test`; everything else is what they call.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint setup venv apt binaries images images-lock push cluster-up cluster-down cluster-status clean unit integration e2e bench demo

## run: set everything up, start the whole local stack and stay up until Ctrl-C
run: setup
	$(PY) -m hack.cluster run

## test: set everything up, lint, then run every test (unit, integration, e2e)
test: setup lint
	$(PY) -m pytest tests

unit: setup
	$(PY) -m pytest tests/unit
integration: setup
	$(PY) -m pytest tests/integration
e2e: setup
	$(PY) -m pytest tests/e2e

## lint: ruff, mypy --strict, import-linter
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

setup: venv apt binaries

venv: $(STAMP)
$(STAMP): pyproject.toml hack/constraints.txt
	@echo "[setup] python virtualenv $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c hack/constraints.txt -e '.[dev]'
	@touch $@

apt:
	@hack/install-apt-packages.sh

binaries:
	@hack/build-binaries.sh

## demo: with `make run` up (another shell), apply deploy/examples/ and watch its Order until Succeeded
DEMO_TIMEOUT ?= 300
DEMO_KUBECONFIG ?= $(CURDIR)/.arc/kubeconfig
DEMO_KUBECTL := KUBECONFIG=$(DEMO_KUBECONFIG) kubectl
demo:
	@test -f $(DEMO_KUBECONFIG) || { echo "[demo] no local stack ($(DEMO_KUBECONFIG)): start it with 'make run' first"; exit 1; }
	$(DEMO_KUBECTL) apply -k deploy/examples
	@echo "[demo] watching orders in arc-demo until mirror-base-images is Succeeded (timeout $(DEMO_TIMEOUT)s)"
	@$(DEMO_KUBECTL) get orders -n arc-demo -w & watcher=$$!; \
	trap 'kill $$watcher 2>/dev/null || true' EXIT; \
	if $(DEMO_KUBECTL) wait order/mirror-base-images -n arc-demo --for=jsonpath='{.status.phase}'=Succeeded \
		--timeout=$(DEMO_TIMEOUT)s >/dev/null; then \
		sleep 1; echo "[demo] Order Succeeded"; \
	else \
		echo "[demo] Order not Succeeded within $(DEMO_TIMEOUT)s:"; \
		$(DEMO_KUBECTL) get orders,artifactworkflows -n arc-demo -o wide || true; exit 1; \
	fi

## images: build the OCI image layouts arc and arc-tools (+ SBOMs) into $(IMAGES_OUT) (docs/images.md); warm: ~1 s
IMAGES_OUT ?= .arc/images
images: venv apt binaries
	$(PY) -m hack.images build --out $(IMAGES_OUT)
## images-lock: build, pin arc-tools' digest in deploy/images.lock.json and render the workflow templates again
images-lock: venv apt binaries
	$(PY) -m hack.images lock --out $(IMAGES_OUT)
## push: copy the built images with skopeo (digests preserved): make push REGISTRY=host[:port]/prefix
push: images
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=host[:port]/prefix"; exit 1; }
	$(PY) -m hack.images push --out $(IMAGES_OUT) --registry $(REGISTRY)

cluster-up: setup
	$(PY) -m hack.cluster up
cluster-down: venv
	$(PY) -m hack.cluster down
cluster-status: venv
	$(PY) -m hack.cluster status

clean: cluster-down
	rm -rf .arc

## bench: every table of docs/performance.md, quick mode (a few minutes); BENCH_ARGS=--full for the full run
##        (1,000,000 Orders and CRDs until they degrade in bench.scale, 10,000 x 3 in bench.controllers: about an
##        hour on 2 cores). Raw JSON and PNG plots in docs/bench/.
BENCH_ARGS ?=
BENCH_MODE := $(if $(filter --full,$(BENCH_ARGS)),--full,--quick)
bench: setup
	$(PY) -m bench.apiserver $(if $(filter --full,$(BENCH_ARGS)),,--quick)
	$(PY) -m bench.compare $(BENCH_MODE)
	$(PY) -m bench.scale $(BENCH_MODE) $(if $(filter --full,$(BENCH_ARGS)),--out docs/bench/scale-1m.json)
	$(PY) -m bench.controllers $(if $(filter --full,$(BENCH_ARGS)),--orders 10000 --out docs/bench/controllers-10k.json)
	$(PY) -m bench.plots
