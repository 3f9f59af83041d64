# The README's two set-up commands: `make demo` and `make test` (style.md §8).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-data
VENDOR := src/medalliance/web/static/vendor
ASSETS := $(VENDOR)/.built

.PHONY: demo test lint typecheck unit bench bench-e2e bench-floor clean simulate assets screenshots stress

$(BIN)/medalliance: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/medalliance $(ASSETS)
	$(BIN)/medalliance demo --data-dir $(DEMO_DIR) --serve

# The web client's JavaScript (htmx, Apache ECharts) from the npm registry, pinned by
# assets/package-lock.json, copied into the package's static folder (gitignored, never committed).
$(ASSETS): assets/package-lock.json
	cd assets && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp assets/node_modules/htmx.org/dist/htmx.min.js assets/node_modules/echarts/dist/echarts.min.js $(VENDOR)/
	touch $@

assets: $(ASSETS)

# The README's screenshots of each role's pages in both languages (Chromium, a CJK font).
screenshots: $(BIN)/medalliance $(ASSETS)
	$(BIN)/python -m tests.browser.screenshots

# The Fabric Gateway Node client for the interop tests (skipped, with a reason, without npm).
INTEROP := tests/interop/node_modules/.package-lock.json
$(INTEROP): tests/interop/package-lock.json
	@if command -v npm >/dev/null; then cd tests/interop && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the Node interop tests will be skipped"; fi

test: $(BIN)/medalliance $(INTEROP) $(ASSETS) lint typecheck
	$(BIN)/pytest -q --durations=30

# Issue 18's stress run: every e2e test RUNS times (5) beside a busy loop per core; prints each
# test that failed at least once and exits 1 if any did (docs/testing.md).
stress: $(BIN)/medalliance $(INTEROP) $(ASSETS)
	$(BIN)/python -m tests.stress --runs $(or $(RUNS),5) $(STRESS_ARGS)

lint: $(BIN)/medalliance
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(BIN)/medalliance
	$(BIN)/mypy

bench: $(BIN)/medalliance
	$(BIN)/python benchmarks/validate_commit.py

bench-e2e: $(BIN)/medalliance
	$(BIN)/python benchmarks/e2e.py

# The protocol's floor: CPU per gRPC call, stream message and ECDSA operation (docs/performance.md).
bench-floor: $(BIN)/medalliance
	$(BIN)/python benchmarks/protocol_floor.py --rounds 3

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache tests/interop/node_modules assets/node_modules $(VENDOR)

# Many seeds of the consensus simulation (docs/consensus.md); SEEDS=20000 make simulate for more.
simulate: $(BIN)/medalliance
	$(BIN)/python -m tests.simulation --seeds $(or $(SEEDS),1000) --n 1 4 7 --swarm
