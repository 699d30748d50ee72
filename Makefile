# Every routine task of aiorch. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GEN := gen/python
DESCRIPTOR := gen/descriptor.pb
PROTOS := $(shell find protos -name '*.proto')
BUF_VERSION := 1.75.0
BUF := build/buf/node_modules/.bin/buf
PYTEST_ARGS ?=

.PHONY: help venv gen run test test-fast lint fmt clean images api-docs console web bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# Debian packages: Apertium and its English-Spanish pair (dubbing's translation), Prometheus
# (promtool checks the alert rules; the observability test scrapes the local stack with it), and Chromium
# (the console's browser tests drive it with Playwright; no browser is ever downloaded), wrk (the
# benchmarks' HTTP load generator) and alsa-utils (its real human speech recordings under
# /usr/share/sounds/alsa feed the media-bomb tests).
SYSTEM_STAMP := $(VENV)/.system-deps
$(SYSTEM_STAMP):
	@mkdir -p $(VENV)
	@if apertium -l 2>/dev/null | grep -qw eng-spa && apertium -l | grep -qw eng-cat && command -v promtool >/dev/null \
		&& command -v chromium >/dev/null && command -v wrk >/dev/null \
		&& [ -f /usr/share/sounds/alsa/Front_Center.wav ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			apertium apertium-eng-spa apertium-eng-cat prometheus chromium wrk alsa-utils; \
	else echo "install the Debian packages apertium, apertium-eng-spa, apertium-eng-cat, prometheus, chromium, wrk and alsa-utils (sudo apt-get install ...)"; exit 1; fi
	touch $@

$(STAMP): pyproject.toml | $(SYSTEM_STAMP)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,dev,s3,engines]'
	# Generated stubs live outside the source tree; a .pth puts them on the venv's path.
	echo "$(CURDIR)/$(GEN)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/aiorch-gen.pth"
	touch $@

venv: $(STAMP) ## Create the virtual environment and install everything

gen/.stamp: $(STAMP) $(PROTOS) tools/gen_protos.py
	$(PY) tools/gen_protos.py --out $(GEN) --descriptor $(DESCRIPTOR)
	touch $@

gen: gen/.stamp ## Generate Python stubs, type stubs and the Envoy descriptor set from protos/

# The REST API's OpenAPI document (built from the descriptor set) and its docs page (Swagger UI's prebuilt
# bundle from npm); the gateway serves build/web/ at /, so they answer at /api/openapi.json and /api/docs/.
API_DOCS_SRC := web/api-docs
API_DOCS_NODE := $(API_DOCS_SRC)/node_modules/.installed
SWAGGER_UI := $(API_DOCS_SRC)/node_modules/swagger-ui-dist
SWAGGER_UI_FILES := swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE
API_WEB := build/web/api

# --ignore-scripts: swagger-ui-dist's one dependency (@scarf/scarf) only reports installs over the network.
$(API_DOCS_NODE): $(API_DOCS_SRC)/package.json $(API_DOCS_SRC)/package-lock.json
	npm ci --silent --no-audit --no-fund --ignore-scripts --prefix $(API_DOCS_SRC)
	touch $@

$(API_WEB)/openapi.json: gen/.stamp gateway/openapi.py
	$(PY) -m gateway.openapi --descriptor $(DESCRIPTOR) --out $@

$(API_WEB)/docs/index.html: $(API_DOCS_NODE) $(API_DOCS_SRC)/index.html $(API_DOCS_SRC)/docs.js
	rm -rf $(API_WEB)/docs && mkdir -p $(API_WEB)/docs
	cp $(addprefix $(SWAGGER_UI)/,$(SWAGGER_UI_FILES)) $(API_DOCS_SRC)/docs.js $(API_WEB)/docs/
	cp $(API_DOCS_SRC)/index.html $@

api-docs: $(API_WEB)/openapi.json $(API_WEB)/docs/index.html ## Build the OpenAPI document and the API docs page into build/web/api/

# The operator console (web/console): TypeScript + Vite, with its gRPC-web client generated from protos/ at
# build time (`buf generate` with protoc-gen-es); built into build/web/console/, served at /console/.
CONSOLE_SRC := web/console
CONSOLE_NODE := $(CONSOLE_SRC)/node_modules/.installed
CONSOLE_GEN := $(CONSOLE_SRC)/src/gen/.stamp
CONSOLE_FILES := $(shell find $(CONSOLE_SRC)/src -path $(CONSOLE_SRC)/src/gen -prune -o -type f -print) \
	$(addprefix $(CONSOLE_SRC)/,index.html tsconfig.json vite.config.ts)

$(CONSOLE_NODE): $(CONSOLE_SRC)/package.json $(CONSOLE_SRC)/package-lock.json
	npm ci --silent --no-audit --no-fund --prefix $(CONSOLE_SRC)
	touch $@

# buf.gen.yaml reads the buf workspace (protos/ plus google/api) and cleans src/gen/ before writing it.
$(CONSOLE_GEN): $(STAMP) $(PROTOS) tools/gen_protos.py $(CONSOLE_SRC)/buf.gen.yaml $(CONSOLE_NODE) | $(BUF)
	$(PY) tools/gen_protos.py --buf-workspace build/buf-workspace
	cd $(CONSOLE_SRC) && $(CURDIR)/$(BUF) generate
	touch $@

build/web/console/index.html: $(CONSOLE_GEN) $(CONSOLE_FILES)
	npm run --silent --prefix $(CONSOLE_SRC) build

console: build/web/console/index.html ## Build the web console into build/web/console/ (served at /console/)

web: console api-docs ## Build every browser file the gateway serves (console, API docs)

run: gen web ## Start the whole platform locally in the foreground (Ctrl-C stops it)
	$(BIN)/aiorch dev up

test: gen web lint ## Install what is missing, lint, and run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

bench: gen ## Start a local stack, run every benchmark, print one table (BENCH_ARGS=--quick for a short run)
	$(PY) -m bench $(BENCH_ARGS)

# The tests that start no server (-m "not stack", marked in tests/conftest.py): pure logic, engines in-process,
# manifests; no lint. About a minute on two cores.
test-fast: gen ## Run the tests that start no server (-m "not stack"), without linting
	$(PY) -m pytest -m "not stack" $(PYTEST_ARGS)

$(BUF):
	mkdir -p build/buf
	npm install --silent --no-audit --no-fund --prefix build/buf @bufbuild/buf@$(BUF_VERSION)

lint: gen $(BUF) ## ruff, mypy and buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PY) tools/gen_protos.py --buf-workspace build/buf-workspace
	cd build/buf-workspace && $(CURDIR)/$(BUF) lint --path aiorch

fmt: $(STAMP) ## Format and autofix the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Container images, one per role (deploy/images/roles.toml), tagged with the project version unless IMAGE_TAG
# is given; IMAGE_ROLES=worker-speech (space separated) builds only those.
IMAGE_REGISTRY ?= ghcr.io/aiorch
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_ROLES ?=
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)

images: ## Build the container images (needs docker or podman)
	@test -n "$(CONTAINER_ENGINE)" || { echo "no container engine: install docker or podman"; exit 1; }
	python3 tools/images.py --engine $(CONTAINER_ENGINE) --registry $(IMAGE_REGISTRY) --tag $(IMAGE_TAG) \
		$(foreach role,$(IMAGE_ROLES),--only $(role))

clean: ## Remove generated code and build outputs (keeps .venv and .state)
	rm -rf gen build web/console/src/gen
