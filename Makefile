# The two commands of the README: `make reproduce` (the main job) and `make test`.
# Each creates or updates .venv itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= default
NOTEBOOKS ?=
ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv test test-fast reproduce bench lab clean-venv

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,spacy]'
	@touch $@

venv: $(VENV)/.installed

## make test: every test of tests/, the slow real-data ones and the nine notebooks (run once, smoke preset) included
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-fast: skip the slow real-data tests and the multi-process ddp and kill tests
test-fast: venv
	$(PY) -m pytest -m "not slow and not ddp and not kill" $(PYTEST_ARGS)

## make reproduce [PRESET=smoke|default|paper] [NOTEBOOKS="06 07"] [ARGS='-p seeds "[1, 2]"']: run the numbered notebooks
reproduce: venv
	$(PY) -m cofee_lib reproduce --preset $(PRESET) $(if $(NOTEBOOKS),--only $(NOTEBOOKS),) $(ARGS)

## make bench: the benchmarks of bench/ (ratios against peers), into results/bench.json
bench: venv
	$(PY) -m cofee_lib bench

## make lab: JupyterLab on the notebooks
lab: venv
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
