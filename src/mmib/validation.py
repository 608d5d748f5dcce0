"""Arguments of the library API (the estimators' params, checked when ``fit`` starts; the views), checked
with scikit-learn's own validators and reported as :class:`InputError` naming the argument and the fix.

scikit-learn's parameter constraints (``sklearn.utils._param_validation``) reject what a plain
``int()`` / ``float()`` would quietly turn into something else: ``n_clusters=2.7`` (not 2),
``alpha=nan`` (NaN probabilities), ``seed='x'``. ``check_array`` rejects views with no column,
NaN / inf, text, or values beyond float32, the dtype the networks train in.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.utils._param_validation import (InvalidParameterError, Interval, StrOptions,
                                             validate_parameter_constraints)
from sklearn.utils.validation import check_array

from mmib.errors import InputError

MAX_SEED = 2**32 - 1  # NumPy's and scikit-learn's random_state range
CONSTRAINTS: dict[str, list[Any]] = {
    "n_clusters": [Interval(Integral, 2, None, closed="left")],
    "alpha": [Interval(Real, 0, np.inf, closed="left")],
    "beta": [Interval(Real, 0, np.inf, closed="left")],
    "seed": [Interval(Integral, 0, MAX_SEED, closed="both")],
    "device": [StrOptions({"auto", "cpu", "cuda"})],
    "progress": ["boolean"],
}


def check_args(caller: str, extra: Mapping[str, list[Any]] | None = None, **values: Any) -> None:
    """Each argument against :data:`CONSTRAINTS` (and ``extra``): the first bad one is an InputError."""
    constraints = {**CONSTRAINTS, **(extra or {})}
    for name, value in values.items():
        try:
            validate_parameter_constraints({name: constraints[name]}, {name: value}, caller)
        except InvalidParameterError as exc:
            wanted = str(exc).split(" must be ", 1)[-1].rsplit(". Got", 1)[0]
            raise InputError(f"{caller}: {exc}", field=name, fix=f"pass {name} as {wanted}") from None


def _fix_for_array(message: str) -> str:
    if "NaN" in message or "infinity" in message:
        return ("impute or drop the non-finite entries; values must fit in float32 (|x| <= 3.4e38): "
                "rescale a feature with larger values")
    if "feature(s)" in message:
        return "give every view at least one feature column"
    if "sample(s)" in message:
        return "pass at least one row per view (one row per sample)"
    if "convert" in message or "dtype" in message:
        return "pass numeric arrays (encode text or categories as numbers first)"
    return "pass each view as an N x d_m numeric array (one row per sample)"


def check_views(views: Sequence[Any], expected_dims: Sequence[int] | None = None) -> list[np.ndarray]:
    """The views as float32 ``N x d_m`` arrays: two or more, finite, same N, and (for a fitted model)
    the widths it was fitted on."""
    if not isinstance(views, (list, tuple)) or len(views) < 2:
        raise InputError("expected a list of at least two view arrays (N x d_m each): the methods are multi-modal",
                         field="views", fix="pass [X1, X2, ...] with one array per view")
    arrays = []
    for m, view in enumerate(views):
        shape = np.shape(view) if isinstance(view, np.ndarray) else None
        if shape is not None and len(shape) != 2:  # scikit-learn's message would print the whole array
            raise InputError(f"views[{m}] must be 2-D (N x d_m), got shape {shape}", field=f"views[{m}]",
                             fix="reshape it: x.reshape(-1, 1) for a single feature")
        try:
            with warnings.catch_warnings(), np.errstate(over="ignore"):  # the overflow is reported below
                warnings.simplefilter("ignore", RuntimeWarning)
                arrays.append(check_array(view, dtype=np.float32, input_name=f"views[{m}]"))
        except (TypeError, ValueError) as exc:
            problem = str(exc).splitlines()[0].removeprefix("Input ")
            raise InputError(problem, field=f"views[{m}]", fix=_fix_for_array(problem)) from None
    rows = [a.shape[0] for a in arrays]
    if len(set(rows)) != 1:
        raise InputError(f"views must have the same number of rows, got {rows}", field="views",
                         fix="give every view one row per sample, in the same order")
    dims = [int(a.shape[1]) for a in arrays]
    if expected_dims is not None and dims != list(expected_dims):
        raise InputError(f"the model was fitted on views of widths {list(expected_dims)}, got {dims}",
                         field="views", fix="pass the same views, in the same order, as at fit time")
    return arrays
