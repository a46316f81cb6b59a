# Each user-facing target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

DEMO_DIR  ?= demo_output
BENCH_DIR ?= bench_output

.PHONY: demo test bench install clean constraints parity predecessor

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mkrefs demo --outdir $(DEMO_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest --basetemp=$(CURDIR)/.pytest_basetemp tests

# The predecessor (jwst-reffiles 1.0.1) in a virtualenv of its own (it imports as
# jwst_reffiles too); with it, `make test` runs the parity harness (tests/parity).
PRED_VENV  := .venv-predecessor
PRED_STAMP := $(PRED_VENV)/.installed

predecessor: $(PRED_STAMP)

$(PRED_STAMP): constraints.txt
	@test -x $(PRED_VENV)/bin/python || $(PYTHON) -m venv $(PRED_VENV)
	$(PRED_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PRED_VENV)/bin/python -m pip install --quiet -c constraints.txt jwst-reffiles==1.0.1
	@touch $(PRED_STAMP)

parity: $(STAMP) $(PRED_STAMP)
	$(BIN)/python -m pytest --basetemp=$(CURDIR)/.pytest_basetemp/parity tests/parity

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --outdir $(BENCH_DIR)

# Regenerate the pinned constraints from the current environment.
constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) $(PRED_VENV) $(DEMO_DIR) $(BENCH_DIR) .pytest_cache *.egg-info
