# ARC — the two set-up commands are `make run` and `make test`; everything else is what they call.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint setup venv apt binaries images images-lock push cluster-up cluster-down cluster-status clean unit integration e2e \
	bench demo fuzz chaos

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

## fuzz: the long fuzz run of issue 14 (make test runs a bounded slice of it): FUZZ_REQUESTS (100,000)
##       requests generated from ARC's own OpenAPI, every path and verb, against an API server and etcd of its
##       own, an etcd outage every 5 rounds; 0 answers >= 500 (but 503/504 while etcd is down), every 4xx a
##       Status, 0 tracebacks. Bounded by FUZZ_SECONDS, the API server by ARC_SERVER_VMEM_MB (prlimit --as)
##       and everything by ulimit -v FUZZ_VMEM_KB; a hard stop 10 min after FUZZ_SECONDS (SIGINT, so pytest
##       still stops its servers). Prints the counts per status and what it found (findings that another
##       change fixes are counted apart while their xfail stands).
FUZZ_REQUESTS ?= 100000
FUZZ_SECONDS ?= 3000
FUZZ_VMEM_KB ?= 8000000
fuzz: setup
	ulimit -v $(FUZZ_VMEM_KB); ARC_LONG_SUITES=1 FUZZ_REQUESTS=$(FUZZ_REQUESTS) FUZZ_SECONDS=$(FUZZ_SECONDS) \
		timeout -s INT -k 60 $$(($(FUZZ_SECONDS) + 600)) $(PY) -m pytest tests/integration/apiserver/test_fuzz.py -m fuzz -s -q

## chaos: the long fault run of issue 14 (make test runs 2 cycles of each): CHAOS_CYCLES (20) kill -9 cycles
##        each of ARC's etcd, of ARC's API server and of a 3-member etcd's leader under a bounded load of
##        creates and updates (<= 300 answered operations per cycle), and of the controller manager (e2e,
##        under the e2e lock) in the middle of Orders fanning out: every acknowledged write is stored
##        afterwards, never a 404 for an object that exists, no ArtifactWorkflow or Workflow twice for one
##        artifact. Bounded by ulimit -v CHAOS_VMEM_KB (the integration part) and CHAOS_SECONDS per part.
CHAOS_CYCLES ?= 20
CHAOS_VMEM_KB ?= 8000000
CHAOS_SECONDS ?= 2400
chaos: setup
	ulimit -v $(CHAOS_VMEM_KB); ARC_LONG_SUITES=1 CHAOS_LONG_CYCLES=$(CHAOS_CYCLES) \
		timeout -s INT -k 60 $(CHAOS_SECONDS) $(PY) -m pytest tests/integration/apiserver/test_faults.py -m chaos -s -q
	ARC_LONG_SUITES=1 CHAOS_LONG_CYCLES=$(CHAOS_CYCLES) flock /tmp/arc-e2e.lock \
		timeout -s INT -k 60 $(CHAOS_SECONDS) $(PY) -m pytest tests/e2e/test_faults.py -m chaos -s -q

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
	$(PY) -m bench.compare $(BENCH_MODE) --h2
	$(PY) -m bench.compare $(BENCH_MODE) --h2 --workers 2 --out docs/bench/compare-workers2.json
	$(PY) -m bench.profile
	$(PY) -m bench.profile --h2 --workers 2 --out docs/bench/profile-aggregated-h2-workers2.json
	$(PY) -m bench.workers --etcd-cluster $(if $(filter --full,$(BENCH_ARGS)),--ops 5000 --rounds 3)
	$(PY) -m bench.scale $(BENCH_MODE) $(if $(filter --full,$(BENCH_ARGS)),--out docs/bench/scale-1m.json)
	$(PY) -m bench.controllers $(if $(filter --full,$(BENCH_ARGS)),--orders 10000 --out docs/bench/controllers-10k.json)
	$(PY) -m bench.plots
