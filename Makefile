# EMS — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
UV = $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
RUN = $(UV) run --locked --quiet

.PHONY: help install run test test-unit test-integration test-e2e check fmt bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install: ## install system packages, uv and the locked environment (idempotent)
	@bash scripts/bootstrap.sh

run: install ## start broker, database, hub, portal and a demo fleet (Ctrl-C stops all)
	@$(RUN) ems up --demo

test: install ## the whole suite: unit, integration (real PostgreSQL + Mosquitto), browser
	@$(RUN) pytest

test-unit: install ## unit tests only (seconds)
	@$(RUN) pytest -m unit

test-integration: install ## integration tests only
	@$(RUN) pytest -m integration

test-e2e: install ## browser tests only
	@$(RUN) pytest -m e2e

check: install ## ruff (lint + format check), mypy --strict and ESLint (portal/static), what CI adds
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy
	@npm --prefix portal/frontend run --silent lint

fmt: install ## format and autofix
	@$(RUN) ruff format .
	@$(RUN) ruff check --fix .

bench: install ## run the benchmarks (they print figures; they never fail the build)
	@for b in ingest alerts scale dashboard sim wire; do echo "== bench/$$b.py"; $(RUN) python -m bench.$$b || exit 1; done

clean: ## remove the local stack's data (.ems/) and caches
	rm -rf .ems .pytest_cache .mypy_cache .ruff_cache
