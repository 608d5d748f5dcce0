"""The issue "Quality" targets, checked on a quality benchmark's results file.

Reads the JSON lines that ``benchmarks/quality.py`` writes and prints one
markdown row per (dataset, recipe): mean ± std over seeds of ACC, NMI, ARI,
ECE, mean confidence, the head's own ECE (T = 1), the cold-start ACC, K_m at
the first and last calibration epoch, the best label-free baseline (ALLKM or
ALLNcuts, the better by ACC; NMI best = the better NMI of the two) and, for
the recipe named by ``--target-recipe``, whether each target is met:

- ACC and NMI at or above the best baseline (Caltech-2V: the paper's 68.6 / 60.5);
- ECE <= 10;
- the calibration stage lowers ACC by at most 1 point from the cold start;
- K_m grows or holds (the last epoch within 1% of the first, or above).

Usage::

    python benchmarks/quality_targets.py benchmarks/quality-2026-12-02.jsonl > table.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import mean_std_cell, read_rows  # noqa: E402

PAPER_TARGETS = {"caltech_2v": (68.6, 60.5)}  # the CLIB paper's best of 20 on Caltech-2V (ACC, NMI)
BASELINES = ("ALLKM", "ALLNcuts")
COLUMNS = ["acc", "nmi", "ari", "ece", "mean_confidence", "ece_head", "cold_start_acc"]


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(vals)) if vals else None


def best_baseline(groups: dict[tuple[str, str], list[dict]], dataset: str) -> tuple[str, float, float] | None:
    """(name, ACC, best NMI) of the better of ALLKM / ALLNcuts by mean ACC; None without baselines."""
    found = [(name, _mean(groups[(dataset, name)], "acc"), _mean(groups[(dataset, name)], "nmi"))
             for name in BASELINES if (dataset, name) in groups]
    if not found:
        return None
    name, acc, _ = max(found, key=lambda f: f[1])
    return name, acc, max(f[2] for f in found)


def target_cells(rows: list[dict], dataset: str, baseline: tuple[str, float, float] | None) -> list[str]:
    """met / missed for: ACC & NMI, ECE <= 10, calibration drop <= 1, K_m holds."""
    acc, nmi, ece = _mean(rows, "acc"), _mean(rows, "nmi"), _mean(rows, "ece")
    goal = PAPER_TARGETS.get(dataset) or (baseline[1:] if baseline else None)
    cells = ["met" if goal and acc >= goal[0] and nmi >= goal[1] else ("missed" if goal else "")]
    cells.append("met" if ece is not None and ece <= 10 else "missed")
    cold = _mean(rows, "cold_start_acc")
    cells.append("" if cold is None else ("met" if acc >= cold - 1 else f"missed ({acc - cold:+.1f})"))
    k0, k1 = _mean(rows, "k_first"), _mean(rows, "k_last")
    cells.append("" if not k0 else ("met" if k1 >= 0.99 * k0 else f"missed ({100 * (k1 / k0 - 1):+.0f}%)"))
    return cells


def table(rows: list[dict], target_recipe: str = "default") -> str:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["recipe"]), []).append(r)
    head = ["dataset", "recipe", "seeds", "ACC", "NMI", "ARI", "ECE", "mean conf", "ECE of the head (T = 1)",
            "cold start ACC", "K_m first -> last", "best baseline ACC / NMI", "target ACC & NMI", "ECE <= 10",
            "calibration drop <= 1", "K_m holds"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    order = {name: i for i, name in enumerate([target_recipe, "paper", "msdib", *BASELINES])}
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        base = best_baseline(groups, ds)
        base_cell = f"{base[0]} {base[1]:.1f} / NMI best {base[2]:.1f}" if base else ""
        for (d, recipe), rs in sorted(groups.items(), key=lambda kv: order.get(kv[0][1], 99)):
            if d != ds:
                continue
            cells = [ds, recipe, str(len(rs)), *(mean_std_cell(rs, k, empty="") for k in COLUMNS)]
            k0, k1 = _mean(rs, "k_first"), _mean(rs, "k_last")
            cells.append(f"{k0:.0f} -> {k1:.0f}" if k0 else "")
            is_clib = recipe not in BASELINES
            cells.append(base_cell if is_clib else "")
            cells += target_cells(rs, ds, base) if recipe == target_recipe else ["", "", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="a results file of benchmarks/quality.py (JSON lines)")
    ap.add_argument("--target-recipe", default="default", help="the recipe whose targets are checked")
    args = ap.parse_args(argv)
    print(table(read_rows(args.results), args.target_recipe))


if __name__ == "__main__":
    main()
