# Two commands matter: `make run` (whole stack, gateway on :8000) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONWARNINGS ?= ignore::DeprecationWarning

.PHONY: bench bench-check gateway-reload run up down status restart test test-cluster unit integration e2e lint format shell seed setup-db bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

run: bootstrap  ## install and run the whole stack in the foreground (Ctrl-C stops it)
	@$(PY) -m scripts.stack run

up: bootstrap  ## the same stack in the background; returns when everything answers
	@$(PY) -m scripts.stack up

down:  ## stop what `make up` started
	@$(PY) -m scripts.stack down

status:
	@$(PY) -m scripts.stack status

restart:  ## rolling restart of what `make up` started: workers, edges, gateway, no request lost
	@$(PY) -m scripts.stack restart

test: bootstrap  ## everything CI runs: lint, secrets scan, unit, integration, e2e, reliability
	@$(VENV)/bin/ruff check .
	@scripts/scan_secrets.sh
	@$(PY) -m pytest tests

unit: bootstrap
	@$(PY) -m pytest tests/unit

integration: bootstrap
	@$(PY) -m pytest tests/integration

e2e: bootstrap
	@$(PY) -m pytest tests/e2e

test-cluster: bootstrap  ## the cluster tier alone: a real 3-node RabbitMQ cluster (root, ~1.3 GB, ~5 min)
	@$(PY) -m pytest tests/cluster -m cluster

lint: bootstrap
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: bootstrap
	@$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

shell: bootstrap  ## nameko shell against the stack's broker
	@$(VENV)/bin/nameko shell --config config.yaml

gateway-reload:  ## re-render the gateway with the current P_VALUE (local stack running)
	@$(PY) -m kong.local_gateway reload --run-dir .run

setup-db: bootstrap
	@$(VENV)/bin/micro-db setup

seed: bootstrap  ## 5 users and 15 orders (RANDOM_SEED=42)
	@$(VENV)/bin/micro-db seed --random-seed $${RANDOM_SEED:-42}

clean: down
	rm -rf .run

bench: bench-check  ## benchmarks on an isolated stack (own ports, vhost, db), peers, c=1 latency budget; BENCH_ARGS=--quick for ~6 min
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	@$(PY) -m bench $(BENCH_ARGS)

bench-check:  ## the bench's own smoke test (~10 s): the relay bench still counts calls and CPU
	@EXTRAS=bench scripts/bootstrap.sh
	@$(PY) -m bench.relay --self-check
	@$(PY) -m bench.queue_types --calls 50 --rounds 1
