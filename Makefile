# The two commands of the README's quick start: `make run` and `make test`.
# Each creates .venv when missing (torch's local CPU build first, so nothing pulls a CUDA build),
# installs the project with its dev extras against requirements.lock, and runs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
TORCH_VERSION ?= 2.13.0

# One torch thread is 5-8x faster than the default on 2-core machines (measured: README, "Threads").
export OMP_NUM_THREADS ?= 1

.PHONY: run test setup lock clean postgresql

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==$(TORCH_VERSION)

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.lock
	$(PIP) install -c requirements.lock -e '.[dev]'
	@touch $@

# MovieLens-100K ships inside RecBole's wheel; its files are all the tests need (no RecBole deps).
$(VENV)/.recbole: $(BIN)/python
	$(PIP) install --no-deps recbole==1.2.1
	@touch $@

# The browser tests drive Debian's chromium (Playwright cannot download its own browser here).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Debian's chromium (the browser tests need it)"; exit 1; }
	apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# The tracking-server tests start Debian's PostgreSQL (any version under /usr/lib/postgresql; as root,
# Recause runs it as the package's `postgres` user, since PostgreSQL refuses root).
POSTGRES_BINARIES := $(wildcard /usr/lib/postgresql/*/bin/postgres)
postgresql:
ifeq ($(POSTGRES_BINARIES),)
	@command -v apt-get >/dev/null || { echo "install Debian's postgresql (the tracking-server tests need it)"; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
endif

setup: $(VENV)/.installed

run: setup
	$(BIN)/recause run --dataset synthetic --preset default

# Two pytest workers (pytest-xdist) take whole test files, so the end-to-end runs of one file share their
# fixtures, in the order tests/conftest.py gives (it balances the two); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: setup $(VENV)/.recbole $(CHROMIUM) postgresql
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Re-pin every dependency from the current environment (after changing pyproject.toml).
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -viE '^(torch==|recbole|nvidia-|triton)' > requirements.lock

clean:
	rm -rf $(VENV) outputs .pytest_cache
