"""A training stage's record: what every method fills per epoch, and what every consumer reads.

The methods keep one stage's history as flat per-epoch series, ``{name: [value
per epoch]}``, because that is what a saved state stores, what MLflow logs and
what the curves CSV holds. This module is the one place that knows how those
names are made: producers write through :func:`fusion_weight_key`,
:func:`screened_key`, :data:`EPOCH_SECONDS`, :data:`COLD_START_LOSS` and
:data:`KMEANS_INERTIA`; consumers (the curves CSV, Figure 3, Figure 6, the
screened counts, MLflow, the saved state) read a :class:`TrainingRecord`, so
no consumer parses a key or checks which method made it.

What a record holds:

- ``loss_terms``: every per-epoch loss series (``loss`` and each term: CLIB's
  ``kl``, ``nce``, ``caliH``, ...; MSDIB's ``l_ip``; OMIB's per-view ``kl_view0``);
- ``fusion_weights`` / ``screened``: ``[epoch][view]`` (Figure 6; the per-epoch
  ``K_m`` of Eq. 9), empty where the method has none;
- ``diagnostics``: the other per-epoch series that are not losses (K-Means
  inertia of the per-epoch targets);
- ``epoch_seconds``: wall-clock per epoch (never saved: it would change a
  state's hash between identical runs);
- ``cold_start_loss``: CLIB's cold start, a loop of its own before calibration;
- ``estimates``: series on another axis than the stage's epochs (OMIB's
  MINE steps and entropy estimates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

EPOCH_SECONDS = "epoch_seconds"
COLD_START_LOSS = "cold_start_loss"
KMEANS_INERTIA = "kmeans_inertia"
_FUSION = "fusion_w_view"
_SCREENED = "n_selected_view"
TIMING_KEYS = (EPOCH_SECONDS,)
"""Per-epoch wall-clock series: never part of a saved state."""
LOSS_KEYS = ("loss", "total")
"""The series that count a stage's epochs (CLIB and MSDIB record ``loss``, OMIB ``total``); a
history with neither nor timings (OMIB's ``bound``) holds estimates only."""
AUXILIARY_LOOPS = {"cold start": "cold_start_"}
"""Epoch loops besides a stage's own (stage name as the methods report it -> prefix of its keys)."""
_PER_VIEW = re.compile(r"^(?P<name>.+)_view(?P<view>\d+)$")


def fusion_weight_key(view: int) -> str:
    """History name of view ``view``'s fusion weight (Figure 6)."""
    return f"{_FUSION}{view}"


def screened_key(view: int) -> str:
    """History name of view ``view``'s screened count ``K_m`` (Eq. 9)."""
    return f"{_SCREENED}{view}"


def metric_name(key: str) -> str:
    """The MLflow name of a history series: per-view series share a ``name/`` section
    (``fusion_w_view2`` -> ``fusion_w/view2``); others keep their name."""
    match = _PER_VIEW.match(key)
    return f"{match['name']}/view{match['view']}" if match else key


def _by_view(hist: Mapping[str, Sequence[float]], prefix: str) -> list[list[float]]:
    """``[epoch][view]`` of the series ``<prefix><m>``, views in order; empty when there are none."""
    views = sorted(int(k.removeprefix(prefix)) for k in hist if k.startswith(prefix) and k[len(prefix):].isdigit())
    return [[float(v) for v in row] for row in zip(*(hist[f"{prefix}{m}"] for m in views))]


@dataclass(frozen=True)
class TrainingRecord:
    """One stage's record, read from the methods' flat history (:meth:`of`)."""

    loss_terms: dict[str, list[float]] = field(default_factory=dict)
    fusion_weights: list[list[float]] = field(default_factory=list)
    screened: list[list[float]] = field(default_factory=list)
    diagnostics: dict[str, list[float]] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    cold_start_loss: list[float] = field(default_factory=list)
    estimates: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, hist: Mapping[str, Sequence[float]]) -> "TrainingRecord":
        """The record of a stage's history (a method's ``history_[stage]`` or a saved state's)."""
        n_epochs = next((len(hist[k]) for k in (*LOSS_KEYS, EPOCH_SECONDS) if k in hist), 0)
        terms, diagnostics, estimates = {}, {}, {}
        for key, values in hist.items():
            values = [float(v) for v in values]
            if key in (EPOCH_SECONDS, COLD_START_LOSS) or key.startswith((_FUSION, _SCREENED)):
                continue
            if len(values) != n_epochs:
                estimates[key] = values
            elif key == KMEANS_INERTIA:
                diagnostics[key] = values
            else:
                terms[key] = values
        return cls(loss_terms=terms, fusion_weights=_by_view(hist, _FUSION), screened=_by_view(hist, _SCREENED),
                   diagnostics=diagnostics, epoch_seconds=[float(v) for v in hist.get(EPOCH_SECONDS, ())],
                   cold_start_loss=[float(v) for v in hist.get(COLD_START_LOSS, ())], estimates=estimates)

    @property
    def n_epochs(self) -> int:
        return next((len(self.loss_terms[k]) for k in LOSS_KEYS if k in self.loss_terms), len(self.epoch_seconds))

    def per_epoch_diagnostics(self) -> dict[str, list[float]]:
        """Every per-epoch series that is not a loss, under its history name: fusion weights,
        screened counts, other diagnostics and the epoch seconds."""
        out = {fusion_weight_key(m): [row[m] for row in self.fusion_weights]
               for m in range(len(self.fusion_weights[0]) if self.fusion_weights else 0)}
        out |= {screened_key(m): [row[m] for row in self.screened]
                for m in range(len(self.screened[0]) if self.screened else 0)}
        out |= self.diagnostics
        if self.epoch_seconds:
            out[EPOCH_SECONDS] = list(self.epoch_seconds)
        return out


def without_timings(hist: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    """A history as a saved state keeps it: the wall-clock series left out (:data:`TIMING_KEYS`)."""
    return {k: list(v) for k, v in hist.items() if k not in TIMING_KEYS}
