# Commands for a fresh machine with Python 3.11 (see README.md):
#   make run   - set up .venv from the lock file and run the pipeline on the bundled demo study
#   make test  - the same set-up, then the test suite (make test-slow: the slow tier; CI runs both)
#   make check - the quick tier for the inner loop: lint, the tests that run no pipeline, a dry run
PYTHON ?= python3.11
VENV ?= .venv
CORES ?= 4
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-16)

.PHONY: run test test-slow check setup lock demo-data clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakemake --dry-run --quiet rules
	$(BIN)/python -m pytest -m "not pipeline and not slurm and not slow"

# The tests too slow for the default tier (e.g. the README's "Start your own study" walk-through
# with a pipeline run of its own); CI runs them after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# Regenerate the bundled demo study (byte-identical for the same seed; a test checks this).
demo-data: $(STAMP)
	$(BIN)/dpo-eval simulate --seed 20251127 --out data/raw --truth data/truth.json

# Refresh requirements.lock from requirements.in (needs network access to PyPI).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-find-links --no-emit-index-url -o requirements.lock requirements.in

clean:
	rm -rf results logs .snakemake
