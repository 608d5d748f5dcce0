"""The paper's ablation tables and the alpha x beta grid from finished experiments (pure functions).

Input: one record per finished DVC experiment (``name``, ``params`` as in
params.yaml, ``metrics`` as metrics/metrics.json). Each CLIB experiment is
placed in a row of Table 2 (which L_Cal terms, no warm-up, heads
back-propagating) and/or Table 3 (screening rule) by its switches alone.
Experiments are compared only within a *setting*: the same params apart from
those switches (and, for the grid, apart from alpha and beta), so that an
ablation row is never set beside a run with other epochs, seeds or data.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

CAL_TERMS = ("cluH", "re", "caliH", "con")  # the order of the paper's row names
TABLE3_ROWS = {"maxprob": "Select by max probability", "s1": "CLIB-S1", "s2": "CLIB-S2(Proposed)",
               "s3": "CLIB-S3"}
DEFAULT_ROW = "CLIB without L_con (default recipe)"
# the loss sets of a full CLIB: the paper's four terms, and the shipped recipe's (README "The default recipe")
FULL_ROWS = {CAL_TERMS: "CLIB", ("cluH", "re", "caliH"): DEFAULT_ROW}
TABLE2_ORDER = ("L_IB + L_cluH", "L_IB + L_cluH + L_re", "L_IB + L_cluH + L_caliH", "L_IB + L_cluH + L_con",
                "I. No warm-up for IB", "II. Cali heads backprop", "CLIB", DEFAULT_ROW)
SHOWN = ("acc", "nmi", "ece")
SWITCHES = (("calibrate", "losses"), ("calibrate", "screening"), ("calibrate", "warmup_free"),
            ("calibrate", "cal_heads_backprop"))
IGNORED = (("data_root",), ("datasets",), ("report",), ("baselines",))  # do not change a dataset's CLIB numbers


def table_rows(params: dict[str, Any]) -> list[tuple[str, str]]:
    """``[(table, row)]`` of a CLIB experiment: where its switches put it in Tables 2 and 3."""
    if params.get("method", "clib") != "clib":
        return []
    cal = params.get("calibrate") or {}
    on = [t for t in CAL_TERMS if (cal.get("losses") or {}).get(t, True)]
    no_warmup, backprop = bool(cal.get("warmup_free")), bool(cal.get("cal_heads_backprop"))
    screening = cal.get("screening", "s2")
    full = tuple(on) in FULL_ROWS
    rows = []
    if screening == "s2":
        if full and not no_warmup and not backprop:
            rows.append(("Table2", FULL_ROWS[tuple(on)]))
        elif full and no_warmup and not backprop:
            rows.append(("Table2", "I. No warm-up for IB"))
        elif full and backprop and not no_warmup:
            rows.append(("Table2", "II. Cali heads backprop"))
        elif "cluH" in on and not no_warmup and not backprop:
            rows.append(("Table2", " + ".join(["L_IB"] + [f"L_{t}" for t in on])))
    if full and not no_warmup and not backprop and screening in TABLE3_ROWS:
        rows.append(("Table3", TABLE3_ROWS[screening]))
    return rows


def _without(params: dict[str, Any], paths) -> dict[str, Any]:
    out = json.loads(json.dumps(params))
    for path in paths:
        node = out
        for key in path[:-1]:
            node = node.get(key) or {}
        node.pop(path[-1], None)
    return out


def setting_of(params: dict[str, Any], dataset: str, extra: tuple = ()) -> str:
    """A short id of everything that must match for two experiments to be compared on ``dataset``."""
    rest = _without(params, SWITCHES + IGNORED + extra)
    rest.pop("catalog", None)  # the dataset catalog: params before it moved to data/catalog.yaml; not a setting
    blob = json.dumps(rest, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def grid_setting(params: dict[str, Any], dataset: str) -> str:
    """The setting of a point of the alpha x beta grid: everything but the switches, alpha and beta."""
    return setting_of(params, dataset, extra=(("alpha",), ("beta",)))


def grid_descriptions(records: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """``(dataset, grid setting) -> what it is`` (seeds, epochs), for the grids' markdown."""
    return {(dataset, grid_setting(rec["params"], dataset)):
            describe_setting({**rec["params"], "alpha": "grid", "beta": "grid"})
            for rec in records for dataset in rec["metrics"]}


def describe_setting(params: dict[str, Any]) -> str:
    """The settings a reader needs to read a table: seeds, epochs, alpha, beta."""
    seeds = params.get("seeds") or []
    warm, cal = params.get("warmup") or {}, params.get("calibrate") or {}
    return (f"{len(seeds)} seeds {seeds}, warm-up {warm.get('epochs')} + calibration {cal.get('epochs')} epochs, "
            f"batch {warm.get('batch_size')}, alpha {params.get('alpha')}, beta {params.get('beta')}")


def ablation_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Long rows ``dataset, setting, table, row, experiment, metric, mean, std`` of Tables 2, 3 and 5."""
    rows = []
    for rec in records:
        params, metrics = rec["params"], rec["metrics"]
        for dataset, values in metrics.items():
            setting = setting_of(params, dataset)
            base = {"dataset": dataset, "setting": setting, "experiment": rec["name"],
                    "description": describe_setting(params)}
            for table, row in table_rows(params):
                for metric in SHOWN:
                    stat = values.get(metric) or {}
                    if "mean" in stat:
                        rows.append({**base, "table": table, "row": row, "metric": metric,
                                     "mean": stat["mean"], "std": stat.get("std", np.nan)})
            hard = values.get("hard_samples") or {}
            for when, label in (("first_calibration_epoch", "At the first calibration epoch"), ("end", "At the end")):
                for metric in SHOWN:
                    stat = (hard.get(when) or {}).get(metric) or {}
                    if "mean" in stat:
                        rows.append({**base, "table": "Table5", "row": label, "metric": metric,
                                     "mean": stat["mean"], "std": stat.get("std", np.nan)})
    return pd.DataFrame(rows, columns=("dataset", "setting", "description", "table", "row", "experiment",
                                       "metric", "mean", "std"))


PAPER_ROWS = {"Table2": {DEFAULT_ROW: "CLIB"}, "Table5": {"At the first calibration epoch": "At epoch 101", "At the end": "At epoch 200"}}
TITLES = {"Table2": "Table 2: ablation of L_Cal's terms, the warm-up and the heads' stop-gradient",
          "Table3": "Table 3: screening rules", "Table5": "Table 5: the 20% hardest samples (lowest quality "
                                                          "score at the first calibration epoch)"}


def _order(table: str, row: str) -> tuple[int, str]:
    order = {"Table2": TABLE2_ORDER, "Table3": tuple(TABLE3_ROWS.values()),
             "Table5": tuple(PAPER_ROWS["Table5"])}[table]
    return (order.index(row) if row in order else len(order), row)


def render_ablations(frame: pd.DataFrame, paper: pd.DataFrame, paper_names: dict[str, str]) -> str:
    """Markdown: per dataset and setting, Tables 2, 3 and 5, ours (mean ± std) beside the paper's."""
    if frame.empty:
        return ("No ablation experiment has finished yet: queue them as in README \"Sweeps and ablations\", "
                "then `dvc queue start`.\n")
    out = ["# Ablations (from `dvc exp show`)", "",
           "Ours: mean ± std over seeds, final model of each seed, no label-based selection. "
           "Paper: best of 20 runs (its protocol), 100 + 100 epochs.", ""]
    for (dataset, setting), group in frame.groupby(["dataset", "setting"], sort=True):
        tables = group.groupby("table")
        if not any(t == "Table5" or g["row"].nunique() > 1 for t, g in tables):
            continue  # a single row is not an ablation (e.g. one point of the alpha x beta grid)
        paper_name = paper_names.get(dataset)
        out += [f"## {dataset} (setting {setting})", "", f"{group['description'].iloc[0]}.", ""]
        for table, sub in sorted(tables, key=lambda kv: kv[0]):
            out += [f"### {TITLES[table]}", "",
                    "| row | experiment | ACC | NMI | ECE | paper ACC | paper NMI | paper ECE |",
                    "|---|---|---|---|---|---|---|---|"]
            keyed = sorted(sub.groupby(["row", "experiment"]), key=lambda kv: _order(table, kv[0][0]))
            for (row, exp), cells in keyed:
                ours = {r.metric: f"{r.mean:.1f} ± {r.std:.1f}" for r in cells.itertuples()}
                paper_row = PAPER_ROWS.get(table, {}).get(row, row)
                ref = paper[(paper["table"] == f"CLIB-{table}") & (paper["method"] == paper_row)
                            & (paper["dataset"] == paper_name)] if paper_name else paper.iloc[:0]
                theirs = {m.lower(): v for m, v in zip(ref["metric"], ref["value_percent"])}
                out.append(f"| {row} | {exp} | " + " | ".join(ours.get(m, "—") for m in SHOWN) + " | "
                           + " | ".join(f"{theirs[m]:.1f}" if m in theirs else "—" for m in SHOWN) + " |")
            out.append("")
    return "\n".join(out)


def alpha_beta_grids(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, pd.DataFrame]]:
    """Figure 2: per dataset and setting (all params but alpha, beta), a beta x alpha grid per metric.

    Only full-CLIB experiments enter (Table 2's "CLIB" or default-recipe row); a setting needs
    at least two distinct (alpha, beta) points. Repeated points are averaged.
    """
    points: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        params = rec["params"]
        if not {("Table2", row) for row in FULL_ROWS.values()} & set(table_rows(params)):
            continue
        for dataset, values in rec["metrics"].items():
            key = (dataset, grid_setting(params, dataset))
            points[key].append({"alpha": float(params["alpha"]), "beta": float(params["beta"]),
                                **{m: (values.get(m) or {}).get("mean", np.nan) for m in SHOWN}})
    grids = {}
    for key, pts in points.items():
        frame = pd.DataFrame(pts)
        if len(frame[["alpha", "beta"]].drop_duplicates()) < 2:
            continue
        grids[key] = {m: frame.pivot_table(index="beta", columns="alpha", values=m, aggfunc="mean")
                      for m in SHOWN}
    return grids


def render_grids(grids: dict[tuple[str, str], dict[str, pd.DataFrame]],
                 descriptions: dict[tuple[str, str], str]) -> str:
    """Markdown of Figure 2's grids: rows beta, columns alpha, one table per metric (seed means)."""
    if not grids:
        return ""
    out = ["# Figure 2: alpha x beta (from `dvc exp show`)", "",
           "Scored with labels for this sensitivity figure only; the defaults stay fixed (no choice is made from it).",
           ""]
    for (dataset, setting), by_metric in sorted(grids.items()):
        out += [f"## {dataset} (setting {setting})", "", f"{descriptions.get((dataset, setting), '')}.", ""]
        for metric, grid in by_metric.items():
            out += [f"{metric.upper()} (rows: beta, columns: alpha)", "",
                    "| beta \\ alpha | " + " | ".join(f"{a:g}" for a in grid.columns) + " |",
                    "|---|" + "---|" * len(grid.columns)]
            for beta, row in grid.iterrows():
                out.append(f"| {beta:g} | " + " | ".join("—" if np.isnan(v) else f"{v:.1f}" for v in row) + " |")
            out.append("")
    return "\n".join(out)
