"""Training that diverges stops at the epoch it happens, naming the param to change.

A step size or a loss weight far too large (``-S warmup.lr=1e30``) makes the
losses and then the weights inf or NaN; left alone, a NaN model is saved and
something later fails without saying why (K-Means on NaN features inside
scikit-learn, NaN probabilities in evaluate). Every training loop calls
:func:`check_finite` at the end of each epoch, before anything uses that
epoch's model, and the error (an :class:`InputError`: the stage exits with
status 2 and writes nothing) names the epoch and the param most likely at
fault: of the params that scale that stage's loss (:data:`LOSS_PARAMS`), the
one furthest above its value in the committed params.yaml, else the learning rate.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import torch

from mmib.errors import InputError

# params.yaml fields that scale each training loop's loss or step, learning rate first
LOSS_PARAMS: dict[str, tuple[str, ...]] = {
    "warmup": ("warmup.lr", "beta", "warmup.kl_weight", "warmup.reconstruction_weight", "warmup.temperature",
               "warmup.grad_clip"),
    "cold start": ("calibrate.lr",),
    "calibrate": ("calibrate.lr", "alpha", "beta", "calibrate.weights.caliH", "calibrate.weights.re",
                  "calibrate.weights.cluH", "calibrate.weights.con", "calibrate.balance_weight",
                  "warmup.kl_weight", "warmup.reconstruction_weight", "warmup.grad_clip"),
    "msdib": ("msdib.lr", "msdib.alpha", "msdib.beta", "msdib.kl_weight"),
    "omib warmup": ("omib.lr",),
    "omib main": ("omib.lr", "omib.beta", "omib.noise_std"),
}


def _lookup(root: Any, dotted: str) -> Any:
    node = root
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else getattr(node, part, None)
        if node is None:
            return None
    return node


def loss_params(estimator: Any, stage: str) -> dict[str, float]:
    """The values of :data:`LOSS_PARAMS` ``[stage]`` on an estimator (CLIB's sections, or MSDIB's and
    OMIB's ``config``: ``msdib.lr`` is ``estimator.config.lr``)."""
    values = {}
    for name in LOSS_PARAMS.get(stage, ()):
        section, _, rest = name.partition(".")
        value = _lookup(estimator.config, rest) if section in ("msdib", "omib") else _lookup(estimator, name)
        if isinstance(value, (int, float)):
            values[name] = float(value)
    return values


def _reference_params() -> dict[str, Any]:
    """The params as committed (``git show HEAD:params.yaml``): the workspace's params.yaml holds
    the failing experiment's values (``dvc exp run -S`` writes them there), so it cannot be the
    reference. Outside a git checkout, the repository's params.yaml; nothing if neither is readable."""
    import subprocess

    import yaml

    from mmib.config import REPO_ROOT, default_params

    try:
        out = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=30)
        if out.returncode == 0:
            committed = yaml.safe_load(out.stdout)
            if isinstance(committed, dict):
                return committed
    except (OSError, subprocess.SubprocessError, yaml.YAMLError):
        pass
    try:
        return default_params().model_dump()
    except (InputError, OSError):
        return {}


def suspect(values: Mapping[str, float]) -> tuple[str, str]:
    """(field, how it compares with the committed value) of the param most likely at fault."""
    reference = _reference_params()
    ratios = {}
    for name, value in values.items():
        ref = _lookup(reference, name)
        if isinstance(ref, (int, float)) and ref > 0 and value > ref:
            ratios[name] = value / ref
    if ratios:
        name = max(ratios, key=ratios.get)
        return name, f"{values[name]:g}, {ratios[name]:.3g} times the committed {_lookup(reference, name):g}"
    name = next(iter(values), "lr")
    return name, f"{values.get(name, float('nan')):g}"


def check_finite(losses: Mapping[str, float], epoch: int, n_epochs: int, stage: str,
                 params_hint: Mapping[str, float], weights: Iterable[torch.Tensor] = ()) -> None:
    """Stop (:class:`InputError`) if an epoch's loss values or the weights are inf or NaN.

    ``epoch`` is 1-based; ``params_hint``: :func:`loss_params` of the estimator for this stage.
    """
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    tensors = [w.detach() for w in weights]
    if not bad and tensors and not bool(torch.stack([torch.isfinite(w).all() for w in tensors]).all()):
        bad["weights"] = float("nan")
    if not bad:
        return
    field, value = suspect(params_hint)
    shown = ", ".join(f"{k}={v}" for k, v in list(bad.items())[:4])
    others = ", ".join(f"{k}={v:g}" for k, v in params_hint.items() if k != field)
    raise InputError(f"training diverged at epoch {epoch} of {n_epochs} of the {stage} stage, non-finite values: "
                     f"{shown} ({field} is {value}); nothing was saved", field=field,
                     fix=f"lower {field} (e.g. back to the committed params.yaml value) and run again"
                         + (f"; the other params scaling this stage: {others}" if others else ""))
