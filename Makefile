# The two commands of the README's Quick start, plus the checks they are made of.
.PHONY: scenarios test check lint types unit integration bootstrap browser postgres docker \
	docker-as-root

SEED ?=
BROKER ?= rabbitmq
DB ?= sqlite
RUNTIME ?= auto
ARGS ?=
PYTEST_ARGS ?=

bootstrap:
	@./scripts/bootstrap

# A Docker engine for the containers runtime: nothing when one answers; as root, installs
# docker.io when missing and starts dockerd in the background.
docker:
	@./scripts/docker-engine

# Run the whole scenario suite on the correct reference services.
# BROKER=kafka runs it on the Kafka-protocol broker; DB=postgres with the services on
# PostgreSQL; RUNTIME=containers in Docker containers (a Docker engine is installed and
# started first when run as root; the images are built on first use). The default, auto,
# uses containers when a Docker engine answers and local processes otherwise.
scenarios: bootstrap $(if $(filter postgres,$(DB)),postgres) $(if $(filter containers,$(RUNTIME)),docker)
	.venv/bin/harness run --broker $(BROKER) --db $(DB) --runtime $(RUNTIME) \
	  $(if $(SEED),--seed $(SEED)) $(ARGS)

# Lint, types, then every test (unit and integration). CI runs exactly this. As root, a
# Docker engine is started for the containers runtime's tests (elsewhere they skip
# without one).
test: bootstrap browser postgres docker-as-root lint types
	.venv/bin/pytest $(PYTEST_ARGS)

docker-as-root:
	@[ "$$(id -u)" -ne 0 ] || ./scripts/docker-engine

# The HTML report's test drives headless Chromium from Debian's packages; installed when
# missing and run as root (in CI that test fails without it; elsewhere it skips).
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" -ne 0 ] || { \
	  echo "bootstrap: installing chromium with apt-get"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# PostgreSQL for `--db postgres` and its tests: installed when missing and run as root. The
# package's own cluster is not started (policy-rc.d refuses it): the harness runs its own.
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || [ "$$(id -u)" -ne 0 ] || { \
	  echo "bootstrap: installing postgresql with apt-get"; created=0; \
	  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' \
	    >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created=1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql \
	  >/dev/null; status=$$?; [ $$created = 0 ] || rm -f /usr/sbin/policy-rc.d; exit $$status; }

lint:
	.venv/bin/ruff check harness reference_services scenarios tests

types:
	.venv/bin/mypy

unit: bootstrap
	.venv/bin/pytest tests/unit $(PYTEST_ARGS)

integration: bootstrap
	.venv/bin/pytest tests/integration $(PYTEST_ARGS)
