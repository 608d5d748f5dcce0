"""The `method` param: which estimator a stage builds, and which one a saved state belongs to.

All methods share the stages, the tracking and the metrics; each method's
training lives in its own module. OMIB is supervised (the reference
ceiling): it alone receives labels, of its training split only.
"""

from __future__ import annotations

from typing import Any

from mmib.config import Params
from mmib.errors import InputError
from mmib.methods.table import METHODS, SUPERVISED, spec  # noqa: F401 (SUPERVISED: the stages read it here)



def build(params: Params, n_clusters: int, seed: int, progress: bool = True) -> Any:
    """A fresh estimator of ``params.method`` with that method's hyper-parameters."""
    if params.method == "clib":
        from mmib.methods.clib import CLIB

        return CLIB.from_params(params, n_clusters, seed=seed, progress=progress)
    if params.method == "msdib":
        from mmib.methods.msdib import MSDIB

        return MSDIB(n_clusters, config=params.msdib, seed=seed, device=params.device, progress=progress)
    if params.method == "omib":
        from mmib.methods.omib import OMIB

        return OMIB(n_clusters, config=params.omib, seed=seed, device=params.device, progress=progress)
    spec(params.method)  # the table's error for a name it does not hold
    raise InputError(f"method {params.method!r} has no estimator", file="params.yaml", field="method",
                     fix=f"use one of {', '.join(METHODS)}")


def method_of_state(state: dict) -> str:
    """The method a saved state belongs to, from its format tag (``mmib-<method>-<version>``)."""
    fmt = str(state.get("format", ""))
    parts = fmt.split("-")
    if len(parts) != 3 or parts[0] != "mmib" or parts[1] not in METHODS:
        raise InputError(f"not a model state of this project (format {fmt!r})", field="format",
                         fix="re-run the training stages: dvc repro")
    return parts[1]


def restore(state: dict, params: Params, n_clusters: int, seed: int) -> Any:
    """Rebuild the estimator a state was saved from (its method, not necessarily params.method)."""
    method = method_of_state(state)
    return build(params.model_copy(update={"method": method}), n_clusters, seed, progress=False).load_state(state)
