# mado-gateway — the two commands a newcomer runs on a fresh Debian machine, as root:
#   make demo    a real cross-community retrieval: Orthanc -> gateway A -> gateway B -> you
#   make test    lint, type check and the whole test suite against real peers
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := orthanc orthanc-dicomweb dicom3tools rsyslog rsyslog-gnutls prometheus curl chromium \
	podman buildah runc catatonit debootstrap nodejs nginx wrk systemd
# checkov pins dependencies the gateway's own (cachetools, packaging) have outgrown: it gets a
# virtual environment of its own, inside .venv so that `make clean` removes it.
CHECKOV := $(VENV)/checkov/bin/checkov

.PHONY: demo test deps system-deps python-deps fhir-peer lint typecheck pytest test-deploy bench bench-xcai config-docs clean

demo: deps
	$(PY) -m demo

test: deps lint typecheck pytest

deps: system-deps python-deps fhir-peer

# Debian packages for the real peers. Installed only when missing, so a second run is quick.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install:" $$missing >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

python-deps: $(VENV)/.installed $(CHECKOV)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The FHIR server the directory and BALP tests talk to (peers/fhir: Medplum's FHIR engine behind
# a small adapter), installed from the npm registry at the versions of its lockfile.
fhir-peer: peers/fhir/node_modules/.package-lock.json

peers/fhir/node_modules/.package-lock.json: peers/fhir/package.json peers/fhir/package-lock.json
	npm ci --prefix peers/fhir --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV): | $(VENV)/.installed
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install -q 'checkov>=3.2,<4'
	touch $@

lint:
	$(VENV)/bin/ruff check .

typecheck:
	$(VENV)/bin/mypy --strict

pytest:
	$(PY) -m pytest -q

# The container image and the Helm chart alone (tests/deploy; `make test` runs them too).
test-deploy: deps
	$(PY) -m pytest -q tests/deploy

# The relay benchmark (bench/relay.py): direct Orthanc, nginx default and tuned, one gateway and
# two, alternating; several minutes. `make bench BENCH_ARGS=--quick` for a short run.
BENCH_ARGS ?=
bench: deps
	$(PY) -m bench.relay $(BENCH_ARGS)

bench-xcai: deps
	$(PY) -m bench.xcai

# docs/configuration.md is generated from the configuration declarations (a test fails when
# it is stale): run this after changing a declared field.
config-docs: python-deps
	$(PY) -m gateway config-schema --format markdown > docs/configuration.md

clean:
	rm -rf peers/fhir/node_modules
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis demo-output
