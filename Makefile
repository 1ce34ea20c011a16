# Two entry points for a fresh machine: `make run` and `make test`.
# Both create .venv if it is missing and install ferxai into it with the extra they need (`run`:
# workflow; `test`: everything; DVC targets: dvc); later calls reuse it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed-workflow

.PHONY: run test report lint dryrun clean help remote repro push pull checkout

help:
	@echo "make run   - set up and run the default pipeline (synthetic FER data, compact CNN)"
	@echo "make test  - set up and run the test suite"
	@echo "make report - run the pipeline and build report.html (REPORT=report.zip for large runs)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch/torchvision are pinned in pyproject.toml; on these machines pip takes them from local disk.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[$*]'
	touch $@

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
