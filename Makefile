# gpubox: `make demo` for a local workstation, `make test` for the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PYTHON ?= python3
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Extra pytest arguments, e.g. make pytest PYTEST_ARGS='-k ssh'.
PYTEST_ARGS ?=

.PHONY: help venv dev host-tools images demo test test-vm lint pytest molecule bench soak gpu-check clean

help:
	@echo "make demo   - a local workstation container, configured by site.yml, ready for ssh"
	@echo "make test   - lint, pytest and every molecule scenario (installs what it needs)"
	@echo "make test-vm - site.yml on a QEMU VM of Debian 13: real kernel, reboot, power loss, autostop, Lynis (not in make test)"
	@echo "make bench  - converge 1, 4 and 8 fresh test hosts twice; wall time and controller CPU per host;"
	@echo "              then provision --local fresh and from a baked image: seconds to ssh and to JupyterLab's URL"
	@echo "make soak   - the tests that log in more than once, 10 runs in a row each (SOAK_RUNS, SOAK)"
	@echo "make gpu-check - gpubox's GPU code against this machine's NVIDIA GPU (no install, no network)"
	@echo "make clean  - remove the virtualenv, test containers and local state of the demo"

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime
dev: $(VENV)/.dev

host-tools:
	bash scripts/host-tools.sh

images: venv host-tools
	$(BIN)/python -m gpubox.containers image debian12 debian13

demo: venv host-tools
	$(BIN)/python runner.py provision --local

lint: dev
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production --strict

pytest: dev host-tools
	$(BIN)/pytest $(PYTEST_ARGS)

molecule: dev images
	$(BIN)/molecule test --all

test: lint pytest molecule

# Too slow for make test's hour on 2 cores (TCG emulation): a real kernel, reboots and power loss.
test-vm: dev
	bash scripts/host-tools.sh vm
	$(BIN)/pytest -m vm tests/test_vm.py -v -s $(PYTEST_ARGS)

bench: dev images
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_boot.py

soak: dev images
	bash scripts/soak.sh

# Plain python3 on purpose: the kit must run on a GPU machine that has none of the virtualenv.
gpu-check:
	python3 scripts/gpu-check

clean:
	-$(BIN)/python -m gpubox.containers down gpubox-local gpubox-bench 2>/dev/null
	rm -rf $(VENV) .pytest_cache
