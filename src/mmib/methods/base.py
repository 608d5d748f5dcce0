"""What every estimator shares: device, progress bars, the fitted check, per-epoch records."""

from __future__ import annotations

import time

import torch

from mmib.errors import InputError
from mmib.runtime import resolve_device


class EstimatorBase:
    """Mixin for the method estimators (``device``, ``progress`` and ``net_`` set by the subclass)."""

    device: str
    progress: bool
    fit_hint = "call fit(views) first"

    def resolved_device(self) -> torch.device:
        return resolve_device(self.device)

    def _bar_off(self) -> bool | None:
        """tqdm's ``disable``: None turns the bar off when output is not a terminal."""
        return None if self.progress else True

    def _require_net(self):
        if getattr(self, "net_", None) is None:
            raise InputError("the model is not fitted", field="model", fix=self.fit_hint)
        return self.net_

    def _epoch_extras(self) -> dict[str, float]:
        """Per-epoch values recorded besides the batch means (e.g. fusion weights)."""
        weights = getattr(self, "fusion_weights", None)
        return {f"fusion_w_view{m}": float(w) for m, w in enumerate(weights())} if weights else {}

    def _record(self, hist: dict, sums: dict, n_batches: int, t0: float) -> None:
        """Append per-epoch means of the batch values (one device sync per epoch)."""
        for k, v in sums.items():
            hist[k].append(float(v) / max(n_batches, 1))
        for k, v in self._epoch_extras().items():
            hist[k].append(v)
        hist["epoch_seconds"].append(time.perf_counter() - t0)
