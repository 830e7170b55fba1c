# Each target bootstraps .venv from this project's own files when it is missing or stale.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo demo-sockets bench lint typecheck fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,lint,bench]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check zeropipe tests benchmarks examples
	$(BIN)/ruff format --check zeropipe tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict zeropipe

test: lint typecheck
	$(BIN)/python -m pytest -n 2 -q

demo: $(STAMP)
	$(BIN)/zeropipe codegen schemas/market.proto -o examples/pipeline/market_gen
	$(BIN)/zeropipe run examples/pipeline/market.toml

demo-sockets: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.codecs
	$(BIN)/python -m benchmarks.pipelines

fuzz: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_protocol_fuzz.py tests/test_mechanism_fuzz.py \
		--hypothesis-profile=long -p no:xdist
	for mechanism in null plain curve; do \
		$(BIN)/python -m tests.fuzz.socket_fuzz --seconds $${FUZZ_SECONDS:-60} \
			--mechanism $$mechanism || exit 1; \
	done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
