# Two entry points for a fresh machine: `make run` and `make test`.
# Both create .venv if it is missing and install ferxai into it with the extra they need (`run`:
# workflow; `test`: everything; DVC targets: dvc); later calls reuse it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed-workflow

.PHONY: run test report lint dryrun clean help remote repro push pull checkout lock

help:
	@echo "make run   - set up and run the default pipeline (synthetic FER data, compact CNN)"
	@echo "make test  - set up and run the test suite"
	@echo "make report - run the pipeline and build report.html (REPORT=report.zip for large runs)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch/torchvision are pinned in pyproject.toml; on these machines pip takes them from local disk.
# constraints.txt fixes every other package's version too, so pip has nothing left to resolve: left
# to resolve the ranges itself against PyPI's newest releases, it once gave up (resolution-too-deep).
# CONSTRAINTS= (empty) installs from pyproject.toml's ranges alone.
CONSTRAINTS ?= constraints.txt
$(VENV)/.installed-%: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install --quiet $(if $(CONSTRAINTS),--constraint $(CONSTRAINTS)) -e '.[$*]'
	touch $@

# After changing pyproject.toml's dependencies: install every extra in a scratch venv and write the
# versions it installed to constraints.txt; run `make test` before committing it.
# UPGRADE="captum zennit" (names as constraints.txt spells them) lets pip choose those packages anew,
# and whatever they need that the old versions no longer satisfy, while every other package keeps
# its version; a package whose pin in pyproject.toml changed must be named. UPGRADE=all resolves
# everything from pyproject.toml alone: pip's full search, which once exceeded its depth limit here.
LOCK_VENV := .venv-lock
UPGRADE ?=
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	grep -v '^#' constraints.txt > $(LOCK_VENV)/keep.txt
	for name in $(UPGRADE); do grep -v -i "^$$name==" $(LOCK_VENV)/keep.txt > $(LOCK_VENV)/next.txt; mv $(LOCK_VENV)/next.txt $(LOCK_VENV)/keep.txt; done
	$(LOCK_VENV)/bin/pip install --quiet $(if $(filter all,$(UPGRADE)),,--constraint $(LOCK_VENV)/keep.txt) -e '.[test]'
	{ grep '^#' constraints.txt; $(LOCK_VENV)/bin/pip freeze --exclude-editable | grep -v '^#'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# The report: the pipeline, the report's own items (workflow/rules/report.smk, requested through
# their last one, report/run_facts.html), then Snakemake's single-file HTML report of all of it.
# Large runs: REPORT=report.zip (a folder of files with an index, instead of one embedded page).
REPORT ?= report.html
report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) report/run_facts.html
	$(BIN)/snakemake --report $(REPORT) report/run_facts.html

lint: $(STAMP)
	$(BIN)/snakemake --lint

dryrun: $(STAMP)
	$(BIN)/snakemake -n

clean:
	rm -rf results report report.html report.zip logs benchmarks .snakemake

# DVC (dvc.yaml runs the workflow stage by stage; docs/running-dvc.md). The default remote is a
# local folder beside the checkout; S3 and S3-compatible servers are described in the doc.
# SETUP= (empty) uses an existing environment given by VENV= as it is, without installing.
DVC_REMOTE ?= ../ferxai-dvc-remote
SETUP ?= $(VENV)/.installed-dvc
# Stage commands call `snakemake` and `python`: take them from the virtualenv.
DVC := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc

remote: $(SETUP)
	$(DVC) remote add --default --force local $(DVC_REMOTE)

repro: $(SETUP)
	$(DVC) repro

push: $(SETUP)
	$(DVC) push

# DVC writes files with new modification times and in no particular order, and a fresh clone has
# no .snakemake/ records, so Snakemake would rebuild everything it sees as older than its inputs.
# Once the workspace matches dvc.lock, `snakemake --touch` marks the outputs up to date, in DAG
# order, and records their provenance. Use `make checkout` after `git checkout` or `dvc exp apply`.
pull: $(SETUP)
	$(DVC) pull
	$(MAKE) --no-print-directory checkout

checkout: $(SETUP)
	$(DVC) checkout
	@$(DVC) status --quiet || { echo "dvc status: results/ differs from dvc.lock; run 'make repro' instead" >&2; exit 1; }
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --touch --cores 1 --quiet
