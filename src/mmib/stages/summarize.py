"""DVC stage ``summarize``: one metrics file nested by dataset (metrics/metrics.json, metrics.md) and
the details beside it (metrics/details.json)."""

from __future__ import annotations

import json
from typing import Any

from mmib.atomic_io import write_json, write_text
from mmib.config import Params
from mmib.errors import InputError
from mmib.stages import cli
from mmib.stages.paths import DETAILS_PATH, SUMMARY_PATH, SUMMARY_TABLE, assignments_path, evaluation_path


def summarize(params: Params) -> dict[str, Any]:
    """Two files nested by dataset: the headline scores in metrics/metrics.json (the metrics file
    `dvc exp show` lists: mean and std of ACC, NMI, ARI, ECE, mean confidence, and the seeds'
    agreement: the NMI between the partitions of every pair of seeds, label-free), the rest (lowest-loss
    seed, Table 5's hard samples) in metrics/details.json, a plain output, so `dvc exp show` stays
    narrow. A dataset without labels has no ACC/NMI/ARI/ECE: its row holds the label-free
    diagnostics and a note."""
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    notes = []
    for dataset in params.datasets:
        path = evaluation_path(dataset)
        if not path.exists():
            raise InputError("evaluation missing", file=str(path), fix=f"run `dvc repro evaluate@{dataset}`")
        ev = json.loads(path.read_text())
        out[dataset] = {k: ev[k] for k in SUMMARY_METRICS if k in ev}
        agreement = (ev.get("label_free") or {}).get("seed_agreement")
        if agreement:  # two seeds or more; label-free, so a recipe can be chosen on unlabelled data (README)
            out[dataset]["seed_agreement"] = agreement["nmi"]
        details[dataset] = {"lowest_loss_seed": {k: ev["lowest_loss_seed"][k] for k in ("seed", "acc", "nmi", "ece")
                                                 if k in ev["lowest_loss_seed"]}}
        if "hard_samples" in ev:  # Table 5 (CLIB)
            details[dataset]["hard_samples"] = {when: {k: ev["hard_samples"][when][k] for k in ("acc", "nmi", "ece")}
                                                for when in ("first_calibration_epoch", "end")}
        if ev.get("labels") is False:  # its only scores: the label-free diagnostics (`dvc exp show` columns)
            free = ev["label_free"]
            if free.get("silhouette"):
                out[dataset]["silhouette"] = free["silhouette"]
            notes.append(f"{dataset}: no labels, so no ACC/NMI/ARI/ECE; assignments in "
                         f"{assignments_path(dataset)}, label-free diagnostics in {path}")
    write_json(SUMMARY_PATH, out)
    write_json(DETAILS_PATH, details)
    lines = ["| dataset | ACC | NMI | ARI | ECE | mean conf | seeds agree (NMI) |", "|---|---|---|---|---|---|---|"]
    for name, m in out.items():
        cells = [f"{m[k]['mean']:.1f} ± {m[k]['std']:.1f}" if k in m else "—" for k in (*SUMMARY_METRICS, "seed_agreement")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    write_text(SUMMARY_TABLE, "\n".join(lines + [""] + notes) + "\n")
    return out


SUMMARY_METRICS = ("acc", "nmi", "ari", "ece", "mean_confidence")
"""The scores copied from the evaluation; ``seed_agreement`` follows them (:func:`summarize`)."""


def main(argv: list[str] | None = None) -> int:
    """``pipeline/summarize.py [--params params.yaml]``."""
    return cli.main("summarize", summarize, argv, per_dataset=False)
