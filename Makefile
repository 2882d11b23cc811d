# The two commands of the README's Quick start, plus the checks they are made of.
.PHONY: scenarios test check lint types unit integration bootstrap

SEED ?=
ARGS ?=
PYTEST_ARGS ?=

bootstrap:
	@./scripts/bootstrap

# Run the whole scenario suite on the correct reference services.
scenarios: bootstrap
	.venv/bin/harness run $(if $(SEED),--seed $(SEED)) $(ARGS)

# Lint, types, then every test (unit and integration). CI runs exactly this.
test: bootstrap lint types
	.venv/bin/pytest $(PYTEST_ARGS)

lint:
	.venv/bin/ruff check harness reference_services scenarios tests

types:
	.venv/bin/mypy

unit: bootstrap
	.venv/bin/pytest tests/unit $(PYTEST_ARGS)

integration: bootstrap
	.venv/bin/pytest tests/integration $(PYTEST_ARGS)
