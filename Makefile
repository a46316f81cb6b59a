# Each user-facing target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

DEMO_DIR  ?= demo_output
BENCH_DIR ?= bench_output

.PHONY: demo test bench install clean constraints

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

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --outdir $(BENCH_DIR)

# Regenerate the pinned constraints from the current environment.
constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) $(DEMO_DIR) $(BENCH_DIR) .pytest_cache *.egg-info
