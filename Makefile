# One command per task; CI runs `make test`, exactly as a newcomer does.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium
APT_GET  := env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: demo test lint types unit install clean browser rabbitmq fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/refundry demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# The browser tests drive Debian's Chromium (never a browser Playwright downloads).
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "make: $(CHROMIUM) is missing; install Debian's chromium package as root" >&2; exit 1; fi; \
	  $$SUDO $(APT_GET) update -q && \
	  $$SUDO $(APT_GET) install -y -q --no-install-recommends chromium; }

# The suites that must hold on both brokers start Debian's RabbitMQ as a node of their own
# (tests/support/rabbitmq_server.py). About 35 MB; 9 s to install from a warm apt cache.
RABBITMQ := /usr/lib/rabbitmq/bin/rabbitmq-server
rabbitmq:
	@test -x $(RABBITMQ) || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "make: $(RABBITMQ) is missing; install Debian's rabbitmq-server package as root" >&2; exit 1; fi; \
	  $$SUDO $(APT_GET) update -q && \
	  $$SUDO $(APT_GET) install -y -q --no-install-recommends rabbitmq-server; }

test: lint types browser rabbitmq
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .refundry .mypy_cache .ruff_cache .pytest_cache

# The long fuzz run: hypothesis with many examples, then atheris, to a million inputs.
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.long_run --inputs $${FUZZ_INPUTS:-1000000}
