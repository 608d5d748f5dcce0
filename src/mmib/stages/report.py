"""DVC stage ``report``: ours (evaluate + baselines) next to the papers' tables, metrics/report.{md,csv}."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mmib.atomic_io import write_csv, write_text
from mmib.config import Params
from mmib.errors import InputError
from mmib.methods import table as method_table
from mmib.stages import cli
from mmib.stages.declared import tracked_params
from mmib.stages.paths import PAPER_TABLES, REPORT_CSV, REPORT_MD, baselines_path, evaluation_path


def report(params: Params, paper_path: str | Path = PAPER_TABLES) -> pd.DataFrame:
    """Ours (evaluate + baselines) next to the papers' numbers: metrics/report.{md,csv}, MLflow."""
    from mmib import report as rp
    from mmib import tracking

    paper = rp.load_paper_table(paper_path)
    names = params.report.paper_names
    rows: list[dict[str, Any]] = []
    lowest: dict[str, int] = {}
    notes: dict[str, str] = {}
    for dataset in params.datasets:
        needed = {"evaluate": evaluation_path(dataset), "baselines": baselines_path(dataset)}
        loaded = {}
        for stage, path in needed.items():
            if not path.exists():
                raise InputError(f"{stage} output missing", file=str(path),
                                 fix=f"run `dvc repro {stage}@{dataset}`")
            loaded[stage] = json.loads(path.read_text())
        rows += rp.dataset_rows(dataset, loaded["evaluate"], loaded["baselines"], paper, names.get(dataset))
        if loaded["evaluate"].get("labels") is False:
            notes[dataset] = loaded["evaluate"]["note"]
        if method_table.spec(loaded["evaluate"].get("method", "clib")).lowest_loss_row and \
                "seed" in (loaded["evaluate"].get("lowest_loss_seed") or {}):
            lowest[dataset] = int(loaded["evaluate"]["lowest_loss_seed"]["seed"])
    bench = rp.load_benchmark(params.report.benchmark)
    for dataset in params.datasets:
        rows += rp.benchmark_fill(dataset, rows, bench)
    frame = rp.report_frame(rows)
    md_path, csv_path = REPORT_MD, REPORT_CSV
    write_text(md_path, rp.render_markdown(frame, params.datasets, names, len(params.seeds), lowest, notes))
    write_csv(csv_path, frame)
    ours = frame[frame["source"] == "ours"]
    with tracking.start_stage_run("report", "all", tracked_params(params, "report"),
                                  pipeline_params=params.model_dump()) as run:
        run.log_metrics({f"{r.dataset}.{r.method}.{r.metric}": r.value for r in ours.itertuples()})
        run.log_artifact(md_path, "report")
        run.log_artifact(csv_path, "report")
    print(f"report: {len(params.datasets)} dataset(s) -> {md_path}, {csv_path}")
    return frame


def main(argv: list[str] | None = None) -> int:
    """``pipeline/report.py [--params params.yaml]``."""
    return cli.main("report", report, argv, per_dataset=False)
