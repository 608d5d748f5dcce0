"""The methods as a table: what the stages and the report need to know about each, so that none of
them checks a method's name. Data only (no estimator imports): the report stage reads it without
depending on the methods' code (its DVC deps stay exact); :mod:`mmib.methods.registry` builds them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmib.errors import InputError


@dataclass(frozen=True)
class MethodSpec:
    """One method's row."""

    report_row: str
    """Its row in ``metrics/report.md`` (:data:`mmib.report.PAPER_ROWS`)."""
    trade_off: str | None
    """Where its alpha / beta live in params: ``""`` top level, else that section; None: it has none."""
    supervised: bool = False
    """Trained on labels (the reference ceiling: its training split only)."""
    fits_temperature: bool = False
    """The calibrate stage fits its confidence temperature (``calibrate.confidence``)."""
    lowest_loss_row: bool = False
    """The report shows its lowest-final-loss seed (METHOD.md section 2) as a row of its own."""
    top_level_recipe: bool = False
    """Its params are params.yaml's top-level recipe (``model``, ``warmup``, ``calibrate``): `make experiments`
    names each run's recipe against the shipped one (:func:`mmib.recipes.recipe_label`)."""
    stacked_seeds: bool = False
    """Its warm-up and calibration can train the seeds as one stacked model (``seed_batching``;
    :mod:`mmib.methods.clib.seed_batch`, :mod:`mmib.methods.clib.seed_batch_calibration`)."""


METHODS: dict[str, MethodSpec] = {
    "clib": MethodSpec("CLIB", trade_off="", fits_temperature=True, lowest_loss_row=True, top_level_recipe=True,
                       stacked_seeds=True),
    "msdib": MethodSpec("MSDIB", trade_off="msdib"),
    "omib": MethodSpec("OMIB", trade_off=None, supervised=True),  # beta capped by the bound M_u: no trade-off
}
SUPERVISED = frozenset(name for name, row in METHODS.items() if row.supervised)


def spec(method: str) -> MethodSpec:
    """The row of ``method``; a clear error for a name the table does not hold."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}", file="params.yaml", field="method",
                         fix=f"use one of {', '.join(METHODS)}")
    return METHODS[method]


def trade_off(method: str, params: Mapping[str, Any]) -> tuple[Any, Any]:
    """``(alpha, beta)`` of ``method`` in a params dict (None for each it lacks or has not set)."""
    where = spec(method).trade_off
    if where is None:
        return None, None
    own = params if where == "" else (params.get(where) or {})
    return own.get("alpha"), own.get("beta")
