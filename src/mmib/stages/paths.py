"""Where the stages read and write: the layout dvc.yaml declares (tests/test_stage_deps.py checks it)."""

from __future__ import annotations

from pathlib import Path

from mmib.data.processed import PROCESSED_DIR as PROCESSED  # preprocess's outputs

MODELS = Path("models")
METRICS = Path("metrics")
PAPER_TABLES = Path("data/reference/paper_tables.csv")
SUMMARY_PATH = METRICS / "metrics.json"  # summarize: DVC's metrics file
SUMMARY_TABLE = METRICS / "metrics.md"
DETAILS_PATH = METRICS / "details.json"  # summarize's second file: not a DVC metrics file (mmib.experiments reads it)
REPORT_MD = METRICS / "report.md"
REPORT_CSV = METRICS / "report.csv"


def model_path(dataset: str, stage: str, seed: int) -> Path:
    return MODELS / dataset / stage / f"seed{seed}.pt"


def curves_path(dataset: str, stage: str) -> Path:
    return METRICS / dataset / f"{stage}_curves.csv"


def evaluation_path(dataset: str) -> Path:
    return METRICS / "evaluate" / f"{dataset}.json"


def assignments_path(dataset: str) -> Path:
    return METRICS / dataset / "assignments.csv"


def baselines_path(dataset: str) -> Path:
    return METRICS / "baselines" / f"{dataset}.json"
