"""The params each stage reads: dvc.yaml declares these lists (tests/test_stage_deps.py checks every
stage against them) and the stage's MLflow run logs them (:func:`tracked_params`)."""

from __future__ import annotations

from typing import Any

from mmib.config import Params

ACTIVE_METHOD = "${method}"
"""The active method's section (``method: msdib`` reads ``msdib:``; CLIB's section ``clib:`` is empty):
dvc.yaml interpolates it, so ``-S omib.mine_steps=...`` under ``method: clib`` re-runs nothing."""

STAGE_PARAMS: dict[str, list[str]] = {
    "preprocess": ["data_root", "preprocess"],
    # the warm-up's trace (Figure 3) is a K-Means per epoch: it reads calibrate's K-Means params
    "warmup": ["seeds", "method", "device", "seed_batching", "beta", "model", "warmup", "calibrate.warmup_free",
               "calibrate.kmeans_n_init", "calibrate.kmeans_warm_start", "calibrate.kmeans_backend", ACTIVE_METHOD],
    "calibrate": ["seeds", "method", "device", "seed_batching", "alpha", "beta", "model", "warmup", "calibrate",
                  ACTIVE_METHOD],
    "evaluate": ["seeds", "evaluate"],
    "baselines": ["seeds", "baselines"],
    "summarize": ["datasets"],
    "report": ["datasets", "seeds", "report"],
}
METHOD_SECTIONS = ("msdib", "omib")
"""Sections of params.yaml that belong to one method each (``method: msdib`` reads ``msdib:``)."""
CLIB_PARAMS = ("alpha", "beta", "model", "warmup", "calibrate")
"""Top-level params only CLIB reads (MSDIB and OMIB read their own section)."""


def declared_params(stage: str, method: str) -> list[str]:
    """The params ``stage`` declares in dvc.yaml under ``method`` (the interpolation DVC does)."""
    return [method if key == ACTIVE_METHOD else key for key in STAGE_PARAMS[stage]]


def _select(params: Params, keys: list[str]) -> dict[str, Any]:
    """The declared subset of params, as nested dicts (``calibrate.warmup_free`` -> dotted leaf)."""
    full = params.model_dump()
    out: dict[str, Any] = {}
    for key in keys:
        node: Any = full
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def tracked_params(params: Params, stage: str) -> dict[str, Any]:
    """The params a stage's MLflow run logs: those the stage used. Its declared params
    (:func:`declared_params`) less CLIB's top-level params under another method (and CLIB's empty
    section); evaluate logs the params its models were trained with (calibrate's) and ``evaluate``;
    report only the ``report.paper_names`` of this run's datasets."""
    declared = declared_params("calibrate" if stage == "evaluate" else stage, params.method)
    keys = [*declared, "evaluate"] if stage == "evaluate" else declared
    unused = {"clib"} | (set(CLIB_PARAMS) if params.method in METHOD_SECTIONS else set())
    out = _select(params, [k for k in keys if k.split(".")[0] not in unused])
    if "report" in out:
        names = out["report"].get("paper_names") or {}
        out["report"] = {**out["report"], "paper_names": {d: names[d] for d in params.datasets if d in names}}
    return out
