"""Shared fixtures."""

from __future__ import annotations

import pytest
import torch

from shipped_params import write_shipped_params


@pytest.fixture(scope="session", autouse=True)
def shipped_default_params(tmp_path_factory):
    """The library's defaults (``mmib.config.DEFAULT_PARAMS``: ``CLIB()`` without params, the
    shipped recipe of ``mmib.experiments``) are the shipped params in tests, not the workspace's
    (see tests/shipped_params.py)."""
    import mmib.config

    path = write_shipped_params(tmp_path_factory.mktemp("shipped") / "params.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mmib.config, "DEFAULT_PARAMS", path)
        yield path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one intra-op thread is faster, and on a busy 2-core machine two threads
    spin-wait on each other (measured 0.15 s vs 6-15 s per fit). Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
