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

.PHONY: help venv dev host-tools images demo test stream-pytest stream-molecule test-vm lint pytest molecule bench soak gpu-check clean

help:
	@echo "make demo   - a local workstation container, configured by site.yml, ready for ssh"
	@echo "make test   - lint, pytest and every molecule scenario (installs what it needs)"
	@echo "make test-vm - site.yml on a QEMU VM of Debian 13: real kernel, reboot, power loss, autostop, Lynis (not in make test)"
	@echo "make bench  - converge 1, 4 and 8 fresh test hosts twice; wall time and controller CPU per host"
	@echo "              (BENCH_IMAGE=pytest-debian12: the hosts start from that baked image, as a fleet from a baked AMI);"
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
	$(BIN)/python -m gpubox.containers image debian12 debian13 debian12-minimal debian13-minimal

demo: venv host-tools
	$(BIN)/python runner.py provision --local

lint: dev
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production --strict

pytest: dev host-tools
	$(BIN)/pytest $(PYTEST_ARGS)

molecule: dev images
	$(BIN)/molecule test --all

# pytest and molecule side by side: each stream is one Ansible run (or one test) at a time, about
# one core of the two, so together they take the time of the longer one, not the sum. Their hosts
# have their own names and ports, and the test-host images and the suite's baked image are built
# under a lock (the second asker waits, then reuses what the first built). Every line is
# prefixed with its stream; each stream ends with its time and exit status. Plain /dev/null stdin:
# make -j hands its own stdin to one job only, and Ansible refuses a broken or non-blocking one.
# Each stream's whole output is also kept in $(TEST_LOGS)/STREAM.log, and when a stream fails the
# failures of both are printed again last: CI shows only the tail, where the other stream's lines
# would otherwise bury the name of what failed.
TEST_LOGS ?= $(CURDIR)/.test-logs
test: lint images
	@mkdir -p $(TEST_LOGS); status=0; \
	$(MAKE) --no-print-directory -k -j2 stream-pytest stream-molecule || status=$$?; \
	if [ $$status -ne 0 ]; then $(BIN)/python scripts/test-failures $(TEST_LOGS)/pytest.log $(TEST_LOGS)/molecule.log; fi; \
	exit $$status

stream-pytest stream-molecule: stream-%:
	@mkdir -p $(TEST_LOGS); start=$$SECONDS; status=0; \
	$(STREAM_$*) </dev/null 2>&1 | tee $(TEST_LOGS)/$*.log | sed -u 's/^/[$*] /' || status=$$?; \
	echo "[$*] finished in $$((SECONDS - start)) s, exit status $$status"; exit $$status
STREAM_pytest = $(BIN)/pytest --durations=30 $(PYTEST_ARGS)
# Molecule wraps what a command prints at the terminal's width (80 columns without one): wide
# enough that a failure's line stays one line, for scripts/test-failures and for whoever reads it.
STREAM_molecule = COLUMNS=400 $(BIN)/molecule test --all

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
	-$(BIN)/python -m gpubox.containers down "gpubox-$$($(BIN)/python -c 'from gpubox import which; print(which.from_login())')" gpubox-bench 2>/dev/null
	rm -rf $(VENV) .pytest_cache
