"""Shared fixtures (one thread for tiny models, the Gaussian blobs seen through several views),
and the params every test reads.

Tests never read the user's workspace params.yaml: ``dvc exp run -S
alpha=0.3`` leaves alpha 0.3 there, and tests that build on the shipped
values (the e2e pipeline, the ablation rows) would then fail. Before any test
module is imported, :data:`mmib.config.DEFAULT_PARAMS` is pointed at the
shipped params: the committed values over the workspace's keys
(tests/shipped_params.py).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import mmib.config

REPO = Path(__file__).resolve().parents[1]

from shipped_params import write_shipped_params  # noqa: E402  (tests/ is on sys.path under pytest)


def _pin_params() -> Path:
    """The shipped params (tests/shipped_params.py) in a temporary file, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="mmib-test-params-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_shipped_params(folder / "params.yaml")


# before any test module is imported: modules may read the shipped params at import time
PINNED_PARAMS = _pin_params()
mmib.config.DEFAULT_PARAMS = PINNED_PARAMS


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one intra-op thread is faster, and on a busy 2-core machine two threads
    spin-wait on each other (measured 0.15 s vs 6-15 s per fit). Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _blobs(n_per: int, n_clusters: int = 3, scale: float = 3.0, seed: int = 0,
           dims: tuple[int, ...] = (4, 3)) -> tuple[list[np.ndarray], np.ndarray]:
    """``n_clusters`` Gaussian blobs (``n_per`` rows each, centres ``scale`` x N(0, 1), unit noise) seen
    through views of widths ``dims``: the float32 views and the labels (rows in label order)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_clusters), n_per)
    centres = [scale * rng.normal(size=(n_clusters, d)) for d in dims]
    return [(c[y] + rng.normal(size=(y.size, c.shape[1]))).astype(np.float32) for c in centres], y


@pytest.fixture(scope="session")
def blobs():
    """The multi-view blob data of the estimator tests: ``blobs(n_per, n_clusters=3, scale=3.0, seed=0,
    dims=(4, 3))`` gives ``(views, labels)``."""
    return _blobs
