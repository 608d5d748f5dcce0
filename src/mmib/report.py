"""Our numbers next to the papers' (pure functions behind the ``report`` stage).

Inputs: the ``evaluate`` stage's ``metrics/evaluate/<ds>.json`` (CLIB, mean
+- std over seeds and the lowest-loss seed), the ``baselines`` stage's
``metrics/baselines/<ds>.json`` and ``data/reference/paper_tables.csv`` (the
papers' tables, columns ``table, method, dataset, metric, value_percent``).
Our dataset names map to the papers' through ``report.paper_names`` in
params.yaml; a dataset without a mapping, or absent from a table, gets
``—`` paper cells.

Which paper row each of our rows is compared with (:data:`PAPER_ROWS`): the
first table of the list that has the dataset. CLIB's Table 1 is preferred;
MSDIB's Table 1 holds the same baselines (``AmKM`` / ``AmNcuts`` are its names
for ALLKM / ALLNcuts, with identical values where both tables have the
dataset) and adds NUS-Wide.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmib.errors import InputError
from mmib.methods import table as method_table

PAPER_COLUMNS = ("table", "method", "dataset", "metric", "value_percent")
REPORT_COLUMNS = ("dataset", "method", "source", "metric", "value", "std", "paper_table")
METRICS = ("ACC", "NMI", "ECE", "ARI")
"""Columns of the markdown tables; the papers report ACC, NMI, ECE (no ARI), ours all four."""
DASH = "—"

# our row key -> (label in the markdown, [(paper table, paper method), ...] in order of preference)
PAPER_ROWS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "KM": ("KM (best view†)", [("CLIB-Table1", "KM"), ("MSDIB-Table1", "KM")]),
    "KM_mean_view": ("KM (mean over views)", []),
    "Ncuts": ("Ncuts (best view†)", [("CLIB-Table1", "Ncuts"), ("MSDIB-Table1", "Ncuts (TPAMI'00)")]),
    "Ncuts_mean_view": ("Ncuts (mean over views)", []),
    "ALLKM": ("ALLKM", [("CLIB-Table1", "ALLKM"), ("MSDIB-Table1", "AmKM")]),
    "ALLNcuts": ("ALLNcuts", [("CLIB-Table1", "ALLNcuts"), ("MSDIB-Table1", "AmNcuts (TPAMI'00)")]),
    "CLIB": ("CLIB (ours: mean ± std; paper: best of 20)", [("CLIB-Table1", "CLIB (Ours)")]),
    "CLIB_lowest_loss_seed": ("CLIB (lowest-loss seed)", []),
    "CLIB_paper_reading": ("CLIB, the paper's literal reading (quality benchmark‡)", []),
    "MSDIB": ("MSDIB (ours: -S method=msdib, else the quality benchmark‡; paper: best of 20)",
              [("MSDIB-Table1", "MSDIB")]),
    "OMIB": ("OMIB: supervised ceiling (test split; not a clustering)", []),
}
BASELINE_KEYS = ("KM", "KM_mean_view", "Ncuts", "Ncuts_mean_view", "ALLKM", "ALLNcuts")


def protocol_line(n_seeds: int) -> str:
    """The one line stating how our protocol differs from the papers'."""
    return (f"Ours: mean ± std over {n_seeds} seeds of the final model, fixed hyper-parameters, "
            "no label-based selection; papers: best of 20 runs, alpha/beta tuned with labels.")


# --------------------------------------------------------------------------
# the papers' table
# --------------------------------------------------------------------------

def load_paper_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read the papers' long table; empty ``value_percent`` cells (no ECE for hard clusterings) become NaN."""
    path = Path(path)
    if not path.is_file():
        raise InputError("the papers' reference table is missing", file=str(path),
                         fix="restore data/reference/paper_tables.csv from git")
    frame = pd.read_csv(path, dtype={"table": str, "method": str, "dataset": str, "metric": str})
    missing = [c for c in PAPER_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"missing columns {missing}", file=str(path),
                         fix=f"the file needs the columns {list(PAPER_COLUMNS)}")
    frame["value_percent"] = pd.to_numeric(frame["value_percent"], errors="coerce")
    return frame


def paper_values(paper: pd.DataFrame, paper_name: str | None, key: str) -> tuple[dict[str, float], str | None]:
    """The papers' numbers for our row ``key`` on dataset ``paper_name``: ``({metric: value}, table)``.

    The first (table, method) of :data:`PAPER_ROWS` that has the dataset wins;
    ``({}, None)`` when none has it (or ``paper_name`` is None). Empty cells
    are left out.
    """
    if paper_name is None:
        return {}, None
    for table, method in PAPER_ROWS[key][1]:
        rows = paper[(paper["table"] == table) & (paper["method"] == method) & (paper["dataset"] == paper_name)]
        if len(rows):
            values = {str(r.metric): float(r.value_percent) for r in rows.itertuples()
                      if not math.isnan(r.value_percent)}
            return values, table
    return {}, None


# --------------------------------------------------------------------------
# long table
# --------------------------------------------------------------------------

def _ours(stats: Mapping[str, Any], key: str) -> tuple[float, float] | None:
    """(mean, std) of metric ``key`` (lower case) from a ``{metric: {mean, std}}`` mapping, or None."""
    entry = stats.get(key)
    if not isinstance(entry, Mapping):
        return None
    return float(entry["mean"]), float(entry.get("std", float("nan")))


def dataset_rows(dataset: str, evaluation: Mapping[str, Any], baselines: Mapping[str, Any],
                 paper: pd.DataFrame, paper_name: str | None) -> list[dict[str, Any]]:
    """Long-format rows (:data:`REPORT_COLUMNS`) of one dataset: ours then the papers'."""
    rows: list[dict[str, Any]] = []

    def add(method: str, source: str, metric: str, value: float, std: float, table: str) -> None:
        rows.append({"dataset": dataset, "method": method, "source": source, "metric": metric,
                     "value": value, "std": std, "paper_table": table})

    methods = baselines.get("methods", baselines)
    for key in BASELINE_KEYS:
        for metric in ("ACC", "NMI", "ARI"):
            got = _ours(methods.get(key, {}), metric.lower())
            if got is not None:
                add(key, "ours", metric, got[0], got[1], "")
    method = method_table.spec(evaluation.get("method", "clib"))  # the method that produced the evaluation
    row = method.report_row
    for metric in ("ACC", "NMI", "ARI", "ECE"):
        got = _ours(evaluation, metric.lower())
        if got is not None:
            add(row, "ours", metric, got[0], got[1], "")
    lowest = evaluation.get("lowest_loss_seed") or {}
    for metric in ("ACC", "NMI", "ARI", "ECE"):
        if method.lowest_loss_row and metric.lower() in lowest:
            add(f"{row}_lowest_loss_seed", "ours", metric, float(lowest[metric.lower()]), float("nan"), "")
    for key in PAPER_ROWS:
        values, table = paper_values(paper, paper_name, key)
        for metric in METRICS:
            if metric in values:
                add(key, "paper", metric, values[metric], float("nan"), table or "")
    return rows


def benchmark_rows(dataset: str, records: Sequence[Mapping[str, Any]], recipe: str = "paper",
                   key: str = "CLIB_paper_reading") -> list[dict[str, Any]]:
    """Rows of one recipe of the quality benchmark (``benchmarks/quality.py`` JSON lines) on ``dataset``:
    mean ± std over its seeds, so the paper's literal reading stands beside the shipped recipe."""
    runs = [r for r in records if r.get("dataset") == dataset and r.get("recipe") == recipe]
    rows = []
    for metric in ("ACC", "NMI", "ARI", "ECE"):
        values = [float(r[metric.lower()]) for r in runs if r.get(metric.lower()) is not None]
        if values:
            rows.append({"dataset": dataset, "method": key, "source": "ours", "metric": metric,
                         "value": float(np.mean(values)), "std": float(np.std(values)),
                         "paper_table": ""})
    return rows


def benchmark_fill(dataset: str, rows: Sequence[Mapping[str, Any]],
                   records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows the quality benchmark adds for ``dataset``: the paper's literal reading always, and
    MSDIB's (recipe ``msdib``) unless this pipeline run trained MSDIB itself (``-S method=msdib``),
    whose own numbers then stand in that row."""
    added = benchmark_rows(dataset, records)
    ran_msdib = any(r["dataset"] == dataset and r["method"] == "MSDIB" and r["source"] == "ours" for r in rows)
    if not ran_msdib:
        added += benchmark_rows(dataset, records, recipe="msdib", key="MSDIB")
    return added


def load_benchmark(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The quality benchmark's records (one JSON object per line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("the quality benchmark results are missing", file=str(path), field="report.benchmark",
                         fix="point report.benchmark at a benchmarks/quality-*.jsonl file of the repository")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON lines ({exc})", file=str(path), field="report.benchmark",
                         fix="use the file benchmarks/quality.py writes") from exc


def report_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(REPORT_COLUMNS))


# --------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------

def _fmt(value: float, std: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if std is None or math.isnan(std):
        return f"{value:.1f}"
    return f"{value:.1f} ± {std:.1f}"


def _cell(frame: pd.DataFrame, method: str, source: str, metric: str) -> str:
    hit = frame[(frame["method"] == method) & (frame["source"] == source) & (frame["metric"] == metric)]
    if hit.empty:
        return DASH
    row = hit.iloc[0]
    return _fmt(float(row["value"]), float(row["std"]))


def dataset_markdown(dataset: str, frame: pd.DataFrame, paper_name: str | None,
                     lowest_seed: int | None = None) -> str:
    """One section: a row per method, an ours / paper column pair per metric (ARI: ours only)."""
    sub = frame[frame["dataset"] == dataset]
    tables = sorted({t for t in sub.loc[sub["source"] == "paper", "paper_table"] if t})
    where = f"papers: {paper_name}" if paper_name else "not in the papers"
    lines = [f"## {dataset} ({where})", ""]
    header = ["method"]
    for metric in ("ACC", "NMI", "ECE"):
        header += [f"{metric} ours", f"{metric} paper"]
    header.append("ARI ours")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for key, (label, _sources) in PAPER_ROWS.items():
        if key == "CLIB_lowest_loss_seed" and lowest_seed is not None:
            label = f"CLIB (lowest-loss seed {lowest_seed})"
        cells = [label]
        for metric in ("ACC", "NMI", "ECE"):
            cells += [_cell(sub, key, "ours", metric), _cell(sub, key, "paper", metric)]
        cells.append(_cell(sub, key, "ours", "ARI"))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Paper values from " + (", ".join(tables) if tables else DASH)
                 + ". † best view chosen with the labels (the papers' protocol); "
                 "the mean-over-views rows are label-free. Baselines are hard clusterings: no ECE. "
                 "‡ measured by the quality benchmark (`report.benchmark`, its seeds and epochs as in its "
                 "docs file; the paper's reading is `mmib.recipes.PAPER_READING`), not by this pipeline run.")
    return "\n".join(lines)


def render_markdown(frame: pd.DataFrame, datasets: Sequence[str], paper_names: Mapping[str, str],
                    n_seeds: int, lowest_seeds: Mapping[str, int] | None = None,
                    notes: Mapping[str, str] | None = None) -> str:
    """The whole report: title, protocol line, one section per dataset (``notes``: a line under a
    dataset's table, e.g. why it has no scores)."""
    parts = ["# Ours vs the papers (ACC, NMI, ECE, ARI in percent)", "", protocol_line(n_seeds), ""]
    for ds in datasets:
        parts.append(dataset_markdown(ds, frame, paper_names.get(ds), (lowest_seeds or {}).get(ds)))
        if (notes or {}).get(ds):
            parts += ["", f"Note: {notes[ds]}."]
        parts.append("")
    return "\n".join(parts)
