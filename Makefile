# tfckpt developer tasks. `make demo` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TFCKPT := $(VENV)/bin/tfckpt
DEMO := build/demo

.PHONY: setup demo test test-fast test-hf lint bench fuzz tour clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# compat: the editable install is a path in a .pth file, like a regular install it adds
	# no import hook to every interpreter start (setuptools' default finder costs ~25 ms).
	$(PY) -m pip install --quiet -e ".[tf,dev,remote,test]" --config-settings editable_mode=compat
	touch $@

demo: setup
	@test -f $(DEMO)/checkpoint || $(PY) examples/make_demo.py $(DEMO)
	$(TFCKPT) ls $(DEMO)
	$(TFCKPT) vars $(DEMO)
	$(TFCKPT) vars $(DEMO) --tree --stats

test: setup
	$(PY) -m pytest -q -m "not slow"

# The presets against their reference, transformers' TF loaders (the last release that has them):
# a CPU build of torch (pinned: an unpinned torch pulls a CUDA build of several GB) and
# transformers 4.57 in the same venv, then only the tests marked hf.
test-hf: setup $(VENV)/.hf-installed
	USE_TF=0 $(PY) -m pytest -q -m hf

$(VENV)/.hf-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet "torch==2.13.0" "transformers>=4.57,<5"
	touch $@

test-fast: setup
	$(PY) -m pytest -q -x -m "not slow and not tf"

lint: setup
	$(VENV)/bin/ruff format --check tfckpt tests examples bench
	$(VENV)/bin/ruff check tfckpt tests examples bench
	$(VENV)/bin/mypy tfckpt

bench: setup
	$(PY) bench/run.py

fuzz: setup
	TFCKPT_FUZZ_CASES=$${TFCKPT_FUZZ_CASES:-100000} $(PY) -m pytest -q -m slow tests/test_fuzz.py

tour: setup
	@test -f $(DEMO)/checkpoint || $(PY) examples/make_demo.py $(DEMO)
	$(PY) examples/make_tour.py $(DEMO) README.md

clean:
	rm -rf build .fixtures .pytest_cache
