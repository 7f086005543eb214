# mgmt-pkg: one Makefile for a fresh machine. `make demo` runs the main job,
# `make test` the whole suite; both install what they need first.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEPS_STAMP := .deps-installed

# System packages, by package manager. The tests use the real tools, never mocks.
APT_PACKAGES := rpm rpmlint sudo systemd createrepo-c dnf etcd-server etcd-client openssh-server \
	openssh-client iproute2 util-linux procps psmisc curl tftp-hpa atftp nginx-light git dbus
DNF_PACKAGES := rpm-build rpmlint sudo systemd createrepo_c dnf etcd openssh-server openssh-clients \
	iproute util-linux procps-ng psmisc curl tftp atftp nginx git dbus-daemon

.PHONY: all deps venv test lint vermin demo bundle srpm bench clean

# What runs on hosts (the agent, the bundle's code) must run on Python 3.6 (RHEL 8's
# platform-python) to 3.13; the initiator-only parts may need a newer one. Annotations
# are evaluated at definition time without `from __future__ import annotations`.
# The same list of initiator-only paths is in tests/compat/pythons.py (INITIATOR_ONLY).
# (VERMIN_SRC: tests/compat/test_vermin_gate.py points it at a copy with faults put in.)
VERMIN_SRC ?= src/mgmt
VERMIN := $(VENV)/bin/vermin --no-tips --violations --eval-annotations -t=3.6- \
	--exclude-regex 'src/mgmt/remote/(transport|orchestration)/' \
	--exclude-regex 'src/mgmt/remote/hierarchy/initiator\.py$$' $(VERMIN_SRC)

all: test

# Install the system packages once per machine; re-run with `make -B deps`.
deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	@if command -v apt-get >/dev/null 2>&1; then \
		missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
		if [ -n "$$missing" ]; then \
			echo "deps: installing $$missing"; \
			$(SUDO) apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
		fi; \
	elif command -v dnf >/dev/null 2>&1; then \
		$(SUDO) dnf install -y -q $(DNF_PACKAGES); \
	else \
		echo "deps: neither apt-get nor dnf found; install: $(DNF_PACKAGES)" >&2; exit 1; \
	fi
	@touch $@

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

venv: $(STAMP)
$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test]'
	@touch $@

test: deps venv
	$(PY) -m ruff check src tests bench fabfile.py
	$(PY) -m ruff format --check src tests bench fabfile.py
	$(VERMIN)
	$(PY) -m pytest -n 2 --dist loadfile

lint: venv
	$(PY) -m ruff check src tests bench fabfile.py
	$(PY) -m ruff format --check src tests bench fabfile.py
	$(VERMIN)

vermin: venv
	$(VERMIN)

demo: deps venv
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/demo.sh

bundle: venv
	$(VENV)/bin/mgmt-pkg bundle -o dist/mgmt

# COPR's make_srpm runs copr/Makefile in a bare chroot, so this needs no venv either.
srpm:
	$(MAKE) -f copr/Makefile srpm outdir=$(CURDIR)/dist spec=$(CURDIR)/specs/mgmt-pkg.spec

bench: deps venv
	@# engine_kinds.py is engine.py's second table (engine.py runs it).
	@for b in $(filter-out bench/engine_kinds.py,$(wildcard bench/*.py)); do \
		echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf dist build out *.egg-info src/*.egg-info $(DEPS_STAMP)
