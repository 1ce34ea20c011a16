# Two entry points for a fresh machine: `make run` and `make test`.
# Both create .venv if it is missing and install ferxai into it; later calls reuse it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed

.PHONY: run test lint dryrun clean help

help:
	@echo "make run   - set up and run the default pipeline (synthetic FER data, compact CNN)"
	@echo "make test  - set up and run the test suite"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch/torchvision are pinned in pyproject.toml; on these machines pip takes them from local disk.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/snakemake --lint

dryrun: $(STAMP)
	$(BIN)/snakemake -n

clean:
	rm -rf results logs benchmarks .snakemake
