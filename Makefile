# Strongroom: `make run` starts the whole stack, `make test` runs every test.
# Both install what they need: Debian's softhsm2, a venv with the pinned Python packages,
# and the gRPC code generated from protos/.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
DEPS   := $(VENV)/.deps-installed
GEN    := gen/.generated
PROTOS := $(shell find protos -name '*.proto' | sort)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

JS_E2E := tests/e2e/js

.PHONY: run test unit bench gen deps softhsm js lock clean

run: deps softhsm gen
	$(PY) -m stack

test: deps softhsm gen js
	$(PY) -m pytest $(PYTEST_ARGS)

unit: deps gen
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

MOTO_VENV := .venv-moto

bench: deps softhsm gen $(MOTO_VENV)/.installed
	$(PY) -m bench --moto $(MOTO_VENV)/bin/moto_server

$(MOTO_VENV)/.installed: bench/moto-requirements.lock
	$(PYTHON) -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/moto-requirements.lock
	touch $@

deps: $(DEPS)

$(DEPS): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'strongroom.pth').write_text('$(CURDIR)\n$(CURDIR)/gen\n')"
	touch $@

softhsm:
	@command -v softhsm2-util >/dev/null 2>&1 && [ -e /usr/lib/softhsm/libsofthsm2.so ] || \
	  { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends softhsm2; }

gen: $(GEN)

# JavaScript clients for the end-to-end tests (AWS SDK v3, gRPC), from the lock file.
js: $(JS_E2E)/node_modules/.installed

$(JS_E2E)/node_modules/.installed: $(JS_E2E)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd $(JS_E2E) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the JavaScript client tests will be skipped"; fi

$(GEN): $(PROTOS) $(DEPS)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	touch $@

lock:
	$(PY) -m pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf gen $(VENV) $(MOTO_VENV) .pytest_cache
