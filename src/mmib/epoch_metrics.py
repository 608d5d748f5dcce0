"""Per-epoch metrics to MLflow while a seed trains, under the names the history uses.

Every training loop of the estimators ends an epoch with the same check
(``_check_finite(hist, epoch, n_epochs, stage)``, :mod:`mmib.methods.base`);
:func:`attach` wraps it on one model instance (the method code is left as
it is), so each epoch's values reach the seed's MLflow run as the epoch
ends, at ``step = epoch`` (from 0). Values of one view are named
``<name>/view<m>`` (``fusion_w/view0``): MLflow groups the charts of a
prefix before ``/`` into one section. A tracking error while training does
not stop it: live logging stops with a warning, and :meth:`EpochLogger.finish`
logs the whole curves at the end instead.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from mmib.training_record import AUXILIARY_LOOPS, metric_name

def curves(history: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    """A stage's history (``{key: per-epoch values}``) under the MLflow names."""
    return {metric_name(k): list(v) for k, v in history.items() if len(v)}


class EpochLogger:
    """Logs one model's epochs to ``run`` (a :class:`mmib.tracking.StageRun`) as they end."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.live = bool(run.enabled)
        self.epochs_logged = 0

    def attach(self, model: Any) -> Any:
        """Wrap ``model``'s per-epoch check (instance only); returns the model."""
        if not self.live:
            return model
        check = model._check_finite

        def check_and_log(hist: Mapping[str, Sequence[float]], epoch: int, n_epochs: int, stage: str) -> None:
            check(hist, epoch, n_epochs, stage)  # a diverged epoch stops here, before it is logged
            self._log(hist, epoch, AUXILIARY_LOOPS.get(stage, ""))

        model._check_finite = check_and_log
        return model

    def _log(self, hist: Mapping[str, Sequence[float]], epoch: int, prefix: str) -> None:
        if not self.live:
            return
        try:
            self.run.log_metrics({metric_name(prefix + k): v[-1] for k, v in hist.items() if len(v)}, step=epoch)
            self.epochs_logged += 1
        except Exception as exc:  # noqa: BLE001 - tracking must not stop a training
            self.live = False
            print(f"warning: MLflow per-epoch logging stopped ({exc}); the curves are logged at the end",
                  file=sys.stderr, flush=True)

    def finish(self, history: Mapping[str, Sequence[float]]) -> None:
        """After training: the whole curves, unless every epoch was logged live."""
        if not self.run.enabled or (self.live and self.epochs_logged):
            return
        self.run.log_curve(curves(history))
