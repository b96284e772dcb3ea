# The two commands of the README: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint unit netns demo clean bench fuzz crash flap abuse soak deb vm-hardening vm-test vm-smoke bench-vm

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check ipmp tests
	$(VENV)/bin/mypy ipmp

test: $(STAMP) lint
	$(PY) -m pytest -q tests

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

netns: $(STAMP)
	$(PY) -m pytest -q tests/netns

bench: $(STAMP)
	$(PY) -m bench.run

# The long reliability runs of RELIABILITY.md (CI runs short versions of all but soak).
fuzz: $(STAMP)
	$(PY) -m tests.fuzz.run --inputs 1000000

crash: $(STAMP)
	IPMP_CRASH_CYCLES=200 $(PY) -m pytest -q -rP tests/netns/test_mpathd_crash.py

flap: $(STAMP)
	IPMP_FLAP_SECONDS=60 IPMP_OUTAGE_SECONDS=60 $(PY) -m pytest -q -rP tests/netns/test_mpathd_outages.py

abuse: $(STAMP)
	IPMP_ABUSE_REQUESTS=10000 $(PY) -m pytest -q -rPx tests/netns/test_mpathd_abuse.py

soak: $(STAMP)
	IPMP_SOAK_SECONDS=1800 $(PY) -m pytest -q -rP tests/netns/test_soak.py

# The hardened units under systemd in a Debian 13 guest (QEMU; tests/vm/README.md).
vm-hardening: $(STAMP)
	$(PY) -m pytest -q -rP -m vm tests/vm/test_hardening.py

# Every guest test: the hardened units, and the Debian package installed with apt
# and rebooted (test_package.py builds the .deb itself, as make deb does).
vm-test: $(STAMP)
	$(PY) -m pytest -q -rP -m vm tests/vm

# What CI runs of the guests (inside its time): the hardened units, the package on Debian 13,
# the boot that waits for a late NIC, NetworkManager and networkd handing the NICs over.
# make vm-test adds the package on Debian 12.
vm-smoke: $(STAMP)
	$(PY) -m pytest -q -rP -m vm tests/vm -k "not bookworm"

# bonding, teamd and ipmp side by side in one Debian guest (QEMU; BENCHMARKS.md).
bench-vm: $(STAMP)
	$(PY) -m bench.peers

demo: $(STAMP)
	$(VENV)/bin/ipmp-lab drill examples/hostname.files/active-active

# dist/ipmp_<version>_all.deb, built with debhelper/pybuild from a copy of the tree (tools/build-deb).
deb:
	tools/build-deb

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
