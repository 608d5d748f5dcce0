"""What the training stages read: the views, never the labels (the honest protocol; tests/test_protocol.py),
except the supervised reference's labels (``method: omib``)."""

from __future__ import annotations

import numpy as np

from mmib.config import Params
from mmib.errors import InputError
from mmib.stages.paths import PROCESSED


def training_views(dataset: str) -> tuple[list[np.ndarray], int]:
    """Views and cluster count: deliberately no labels (honest protocol)."""
    from mmib.data.processed import load_processed

    views, _labels, n_clusters = load_processed(PROCESSED / f"{dataset}.npz")
    return views, n_clusters


def supervised_targets(dataset: str, params: Params, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and the stratified training split, for the supervised reference (OMIB) only.

    This is the one place outside evaluation that reads labels, and only when
    ``method: omib`` (a supervised ceiling, reported apart from clustering).
    OMIB itself uses the rows of ``train_idx`` only; its metrics are on the rest.
    """
    from mmib.data.processed import load_processed
    from mmib.methods.omib.estimator import stratified_split

    _views, targets, _c = load_processed(PROCESSED / f"{dataset}.npz")
    if targets is None:
        raise InputError("method omib is supervised and the dataset has no labels",
                         file=str(PROCESSED / f"{dataset}.npz"), field="method",
                         fix="use method: clib or msdib for unlabelled data")
    return targets, stratified_split(targets, params.omib.test_fraction, seed)[0]

