# The two commands of the README: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint unit netns demo clean bench

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

demo: $(STAMP)
	$(VENV)/bin/ipmp-lab drill examples/hostname.files/active-active

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
