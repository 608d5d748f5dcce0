"""The `method` param: which estimator a stage builds, and which one a saved state belongs to.

All methods share the stages, the tracking and the metrics; each method's
training lives in its own package (:mod:`mmib.methods.clib`, ...). OMIB is supervised (the reference
ceiling): it alone receives labels, of its training split only.
"""

from __future__ import annotations

from typing import Any

from mmib.config import Params
from mmib.errors import InputError
from mmib.methods.table import METHODS, SUPERVISED, spec  # noqa: F401 (SUPERVISED: the stages read it here)


def _clib() -> type:
    from mmib.methods.clib.estimator import CLIB
    return CLIB


def _msdib() -> type:
    from mmib.methods.msdib.estimator import MSDIB
    return MSDIB


def _omib() -> type:
    from mmib.methods.omib.estimator import OMIB
    return OMIB


ESTIMATORS = {"clib": _clib, "msdib": _msdib, "omib": _omib}
"""Each method's estimator class, imported when first built (a stage imports only the method it runs)."""


def estimator_class(method: str) -> type:
    """The estimator class of ``method`` (a clear error for a name the table does not hold)."""
    spec(method)
    if method not in ESTIMATORS:
        raise InputError(f"method {method!r} has no estimator", file="params.yaml", field="method",
                         fix=f"use one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[method]()


def build(params: Params, n_clusters: int, seed: int, progress: bool = True) -> Any:
    """A fresh estimator of ``params.method`` with that method's hyper-parameters (its ``from_params``)."""
    return estimator_class(params.method).from_params(params, n_clusters, seed=seed, progress=progress)


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
