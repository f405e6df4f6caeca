# Two entry points for a fresh machine (see README): `make solve Q="..."` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,hf,train,ray
Q ?= give me the number of movies directed by Sofia Coppola
SOLVE_ARGS ?=

.PHONY: install solve test bench image clean

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

solve: install
	$(PY) -m agent solve "$(Q)" --toolset tmdb --out solve.json $(SOLVE_ARGS)

test: install
	$(PY) -m ruff check codetool codetool_kernel agent sandbox tools rm evaluation bench tests
	$(PY) -m pytest -q

bench: install
	$(PY) bench/sandbox_latency.py
	$(PY) bench/prm_throughput.py
	$(PY) bench/collect_throughput.py
	$(PY) bench/run_throughput.py
	$(PY) bench/throughput.py --quick

image: install
	$(PY) -m sandbox build-image

clean:
	rm -rf $(VENV) .pytest_cache
