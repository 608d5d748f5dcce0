"""What CLIB training records for the figures, and only for them (Figure 3, Table 5).

Per epoch, the cluster assignment of every sample: during the warm-up (no
cluster head yet) a K-Means of the fused features ``h^f``, during calibration
the argmax of the cluster head. At the first calibration epoch also the
cluster-head probabilities and each sample's quality score. No labels are
read here and nothing in training reads the trace back: evaluation scores it
(:mod:`mmib.trace_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


def _labels(assign: np.ndarray) -> np.ndarray:
    return np.asarray(assign, dtype=np.int16)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.int16)


@dataclass
class TrainingTrace:
    """Snapshots of one seed's training. ``calibrate[0]`` is the state after the cold start
    (the paper's "epoch 101"), ``calibrate[e]`` the state after ``e`` calibration epochs."""

    warmup: list[np.ndarray] = field(default_factory=list)
    calibrate: list[np.ndarray] = field(default_factory=list)
    first_calibration_proba: np.ndarray | None = None
    first_calibration_quality: np.ndarray | None = None

    def add_warmup(self, assign: np.ndarray) -> None:
        self.warmup.append(_labels(assign))

    def add_calibration(self, proba: np.ndarray, quality: np.ndarray | None = None) -> None:
        """Record the cluster-head probabilities of one calibration snapshot (argmax kept;
        the first snapshot keeps the probabilities and quality scores too)."""
        proba = np.asarray(proba, dtype=np.float32)
        if not self.calibrate:
            self.first_calibration_proba = proba
            self.first_calibration_quality = None if quality is None else np.asarray(quality, np.float32)
        self.calibrate.append(_labels(proba.argmax(axis=1)))

    def reset_calibration(self) -> None:
        self.calibrate = []
        self.first_calibration_proba = self.first_calibration_quality = None

    def to_state(self) -> dict[str, Any]:
        """As tensors: a saved state holds tensors and plain values only (:mod:`mmib.state_io`)."""
        return {"warmup": _tensor(_stack(self.warmup)), "calibrate": _tensor(_stack(self.calibrate)),
                "first_calibration_proba": _tensor(self.first_calibration_proba),
                "first_calibration_quality": _tensor(self.first_calibration_quality)}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "TrainingTrace":
        """The trace of a saved state (empty for states saved before traces existed)."""
        if not state:
            return cls()
        return cls(warmup=list(_array(state["warmup"])), calibrate=list(_array(state["calibrate"])),
                   first_calibration_proba=_array(state.get("first_calibration_proba")),
                   first_calibration_quality=_array(state.get("first_calibration_quality")))


def _tensor(a: np.ndarray | None) -> torch.Tensor | None:
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a))


def _array(t: Any) -> np.ndarray | None:
    return None if t is None else np.asarray(t)
