"""Collect finished DVC experiments: the side-by-side table, the ablation tables and the alpha x beta grid.

    python -m mmib.experiments            # or: make experiments
    -> metrics/experiments.{md,csv}       every experiment: method, alpha, beta, seeds x metrics per dataset
    -> metrics/ablations.{md,csv}         Tables 2, 3 and 5 beside the paper's (mmib.ablations)
    -> metrics/sweeps/                    Figure 2: alpha x beta heatmaps (PNG) and their grids (CSV)

Reads `dvc exp show --json -A` (every commit and its finished experiments;
the workspace and running experiments are skipped), so runs of different methods, alphas and betas sit side by
side, e.g. after `dvc exp run -S method=msdib` and `-S method=omib`.
OMIB rows are marked as the supervised ceiling (scored on a held-out split).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from mmib.atomic_io import atomic_path, write_text
from mmib.methods.table import spec as method_spec
from mmib.methods.table import trade_off

METRICS_FILE = "metrics/metrics.json"
DETAILS_FILE = "metrics/details.json"  # summarize's plain output (mmib.stages.paths.DETAILS_PATH): not in `dvc exp show`
COLUMNS = ("experiment", "rev", "method", "recipe", "alpha", "beta", "n_seeds", "dataset", "metric", "mean", "std")
SHOWN = ("acc", "nmi", "ece", "mean_confidence", "seed_agreement")  # the last: label-free (README "Choosing a recipe without labels")


def _in_workspace(rev: dict) -> bool:
    """The workspace, or an experiment still running in it: its params and metrics may
    come from different runs, so it is never reported."""
    return rev.get("rev") == "workspace" or (rev.get("data") or {}).get("rev") == "workspace"


def _revisions(show: list[dict]) -> Iterator[tuple[str, dict]]:
    """Committed baselines and their finished experiments."""
    for top in show:
        if not _in_workspace(top):
            yield (top.get("name") or top["rev"][:7]), top
        for exp in top.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if not _in_workspace(rev):
                    yield (rev.get("name") or rev["rev"][:7]), rev


def _trade_off(params: dict, method: str) -> tuple[Any, Any]:
    """Each method's own alpha/beta, where :data:`mmib.methods.table.METHODS` says it keeps them
    (CLIB top level, MSDIB in `msdib:`; OMIB has none: its beta is capped by the bound M_u); "—" if none."""
    return tuple("—" if v is None else v for v in trade_off(method, params))


def committed_details(rev: str) -> dict[str, Any]:
    """metrics/details.json as committed in ``rev`` (an experiment's commit holds its cache: false
    outputs); {} when that revision has none."""
    try:
        text = subprocess.run(["git", "show", f"{rev}:{DETAILS_FILE}"], capture_output=True, text=True,
                              check=True).stdout
        details = json.loads(text)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return {}
    return details if isinstance(details, dict) else {}


def with_details(metrics: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """Each dataset's headline metrics with its details (lowest-loss seed, hard samples) beside them."""
    return {ds: {**(details.get(ds) or {}), **values} if isinstance(values, dict) else values
            for ds, values in metrics.items()}


def experiment_records(show: list[dict],
                       details: Callable[[str], dict[str, Any]] = committed_details) -> list[dict[str, Any]]:
    """``{name, rev, params, metrics}`` of every finished revision that has metrics; ``metrics`` holds
    metrics/metrics.json (from `dvc exp show`) and metrics/details.json (read from the revision)."""
    records = []
    for name, rev in _revisions(show):
        data = rev.get("data") or {}
        metrics = ((data.get("metrics") or {}).get(METRICS_FILE) or {}).get("data") or {}
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        if metrics:
            metrics = with_details(metrics, details(str(rev.get("rev", ""))))
            records.append({"name": name, "rev": str(rev.get("rev", ""))[:7], "params": params, "metrics": metrics})
    return records


def experiment_rows(show: list[dict]) -> list[dict[str, Any]]:
    """Long-format rows (:data:`COLUMNS`) of every revision that has metrics."""
    return rows_of(experiment_records(show))


def rows_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Long-format rows (:data:`COLUMNS`) of :func:`experiment_records`."""
    import yaml

    from mmib.config import DEFAULT_PARAMS
    from mmib.recipes import recipe_label

    shipped = yaml.safe_load(DEFAULT_PARAMS.read_text()) if DEFAULT_PARAMS.exists() else None
    rows = []
    for rec in records:
        name, params, metrics = rec["name"], rec["params"], rec["metrics"]
        method = params.get("method", "clib")
        recipe = recipe_label(params, shipped) if method_spec(method).top_level_recipe else "—"
        alpha, beta = _trade_off(params, method)
        for dataset, values in metrics.items():
            for metric in SHOWN:
                stat = values.get(metric)
                if isinstance(stat, dict) and "mean" in stat:
                    rows.append({"experiment": name, "rev": rec["rev"],
                                 "method": method, "recipe": recipe, "alpha": alpha, "beta": beta,
                                 "n_seeds": len(params.get("seeds") or []),
                                 "dataset": dataset, "metric": metric, "mean": float(stat["mean"]),
                                 "std": float(stat.get("std", float("nan")))})
    return rows


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """One table per dataset: a row per experiment, `mean ± std` per metric."""
    if not rows:
        return "No experiment has metrics yet: run `dvc exp run` first.\n"
    frame = pd.DataFrame(rows, columns=COLUMNS)
    out = ["# Experiments (from `dvc exp show`)", ""]
    for dataset, sub in frame.groupby("dataset", sort=True):
        out += [f"## {dataset}", "", "| experiment | method | recipe | alpha | beta | seeds | ACC | NMI | ECE | mean conf | seeds agree (NMI) |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for (exp, rev), grp in sub.groupby(["experiment", "rev"], sort=False):
            first = grp.iloc[0]
            cells = {r.metric: f"{r.mean:.1f} ± {r.std:.1f}" for r in grp.itertuples()}
            method = first["method"] + (" (supervised ceiling)" if method_spec(first["method"]).supervised else "")
            out.append(f"| {exp} | {method} | {first['recipe']} | {first['alpha']} | {first['beta']} | {first['n_seeds']} | "
                       + " | ".join(cells.get(m, "—") for m in SHOWN) + " |")
        out.append("")
    return "\n".join(out)


def _dvc() -> str:
    """The dvc of this environment (beside the interpreter) when there is one."""
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.exists() else "dvc"


def write_ablations(records: list[dict[str, Any]], out: Path = Path("metrics")) -> list[Path]:
    """Tables 2, 3, 5 (markdown + CSV) and the alpha x beta heatmaps; returns the files written."""
    from mmib import ablations, plots
    from mmib.report import load_paper_table
    from mmib.stages.paths import PAPER_TABLES

    names: dict[str, str] = {}  # each experiment's own `report.paper_names`
    for rec in records:
        names.update(((rec["params"].get("report") or {}).get("paper_names")) or {})
    frame = ablations.ablation_frame(records)
    all_grids = ablations.alpha_beta_grids(records)
    text = ablations.render_ablations(frame, load_paper_table(PAPER_TABLES), names)
    write_text(out / "ablations.md", text + "\n" + ablations.render_grids(all_grids, ablations.grid_descriptions(records)))
    files = [out / "ablations.md"]
    with atomic_path(out / "ablations.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4g")
    files.append(out / "ablations.csv")
    for (dataset, setting), grids in all_grids.items():
        stem = out / "sweeps" / f"alpha_beta_{dataset}_{setting}"
        long = pd.concat({m: g.stack() for m, g in grids.items()}, names=["metric"]).rename("mean").reset_index()
        with atomic_path(stem.with_suffix(".csv")) as tmp:
            long.to_csv(tmp, index=False, float_format="%.4g")
        files.append(stem.with_suffix(".csv"))
        for metric, grid in grids.items():
            files.append(plots.heatmap(grid, f"{stem}_{metric}.png",
                                       title=f"{dataset}: {metric.upper()} over alpha x beta\n(setting {setting})",
                                       value_label=f"{metric.upper()} (%), seed mean"))
    return files


def main() -> int:
    from mmib import tracking

    # -A: experiments of every baseline commit, not only of HEAD
    proc = subprocess.run([_dvc(), "exp", "show", "--json", "-A"], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"error: `dvc exp show --json` failed:\n{proc.stderr}", file=sys.stderr)
        return 2
    records = experiment_records(json.loads(proc.stdout))
    rows = rows_of(records)
    write_text(Path("metrics/experiments.md"), render_markdown(rows))
    with atomic_path(Path("metrics/experiments.csv")) as tmp:
        pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp, index=False, float_format="%.4g")
    files = [Path("metrics/experiments.md"), Path("metrics/experiments.csv")]
    files += write_ablations(records)
    with tracking.start_stage_run("experiments", "all", {"n_experiments": len(records)}) as run:
        for path in files:
            run.log_artifact(path, "experiments")
    print(f"{len(rows)} rows -> " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
