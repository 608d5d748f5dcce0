"""The paper's literal reading of CLIB as a set of param overrides, one command away.

params.yaml holds the shipped recipe (README "Deviations" lists every switch
that differs from the paper, with the measurements behind it).
:data:`PAPER_READING` sets each of those switches back to METHOD.md's
literal reading of the paper; it is the single list that ``make paper``
(``dvc exp run -n paper-reading -S ...``), ``python -m mmib.sweeps paper``
and the quality benchmark use.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

PAPER_READING: list[str] = [
    "warmup.preservation=mine",          # Eq. 4 by MINE (Section 3.3)
    "warmup.reconstruction_weight=0.0",  # no decoders in the paper
    "warmup.projection_dim=0",           # NT-Xent on h^m itself (Eq. 3, Theorem 3)
    "warmup.alignment_reduction=sum",    # Eq. 3 sums over view pairs
    "calibrate.cold_start_clusters=kmeans",  # METHOD.md's cold start: K-Means labels
    "calibrate.pseudo_clusters=kmeans",  # "we run the K-Means algorithm on the fused feature space"
    "calibrate.targets=cluster_mean",    # q_c, Eq. 7
    "calibrate.screening_rank=score",    # METHOD.md ranks by S_2
    "calibrate.screening_agreement=false",  # Eq. 10 uses every screened pair
    "calibrate.caliH_reduction=sum",     # Eq. 7 sums over views
    "calibrate.con_reduction=sum",       # Eq. 11 sums over views
    "calibrate.losses.con=true",         # Eq. 6 includes L_con (Eq. 11)
    "calibrate.weights.caliH=1.0",       # Eq. 6: unit weights
    "calibrate.weights.con=1.0",
    "calibrate.balance_weight=0.0",      # L_re acts on the calibration heads only (Eq. 8)
    "calibrate.batch_per_cluster=0.0",   # stage 2 keeps the warm-up's batch of 64
    "calibrate.keep_ib=true",            # Eq. 2: L_IB + alpha L_Cal
    "calibrate.confidence=head",         # the cluster head's softmax is the confidence (Section 3.2)
]
"""``key=value`` overrides (``dvc exp run -S`` syntax) that turn params.yaml into the paper's reading."""


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of a params dict with dotted ``key=value`` overrides applied (values parsed as YAML)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        if parts[-1] not in node:
            raise KeyError(f"unknown param {key!r}")
        node[parts[-1]] = yaml.safe_load(value)
    return out


def _lookup(params: dict[str, Any], key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def recipe_label(params: dict[str, Any], shipped: dict[str, Any] | None = None) -> str:
    """Which recipe a run's params are: ``paper`` (every switch of :data:`PAPER_READING`),
    ``default`` (every switch as in ``shipped``, the repository's params.yaml) or ``custom``.

    Only the switches of :data:`PAPER_READING` are compared; a run of params
    older than the switches (none present) counts as the paper's reading,
    which was then the only one.
    """
    keys = [o.partition("=")[0] for o in PAPER_READING]
    values = [_lookup(params, k) for k in keys]
    if all(v is None for v in values):
        return "paper"
    if all(v is None or v == yaml.safe_load(o.partition("=")[2]) for v, o in zip(values, PAPER_READING)):
        return "paper"
    if shipped is not None and all(v == _lookup(shipped, k) for v, k in zip(values, keys)):
        return "default"
    return "custom"


def main(argv: list[str] | None = None) -> int:
    """``python -m mmib.recipes --dvc-args``: the paper's reading as ``-S key=value`` arguments."""
    import argparse
    import shlex

    parser = argparse.ArgumentParser(prog="python -m mmib.recipes", description=main.__doc__)
    parser.add_argument("--dvc-args", action="store_true", help="print `-S key=value ...` for `dvc exp run`")
    args = parser.parse_args(argv)
    if args.dvc_args:
        print(" ".join(f"-S {shlex.quote(o)}" for o in PAPER_READING))
    else:
        print("\n".join(PAPER_READING))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
