"""Shared fixtures, and the params every test reads.

Tests never read the user's workspace params.yaml: ``dvc exp run -S
alpha=0.3`` leaves alpha 0.3 there, and tests that build on the shipped
values (the e2e pipeline, the ablation rows) would then fail. Before any test
module is imported, :data:`mmib.config.DEFAULT_PARAMS` is pointed at a copy of
the committed params.yaml (``git show HEAD:params.yaml``), falling back to the
workspace file when there is no git, no committed copy, or the committed copy
no longer validates against the code (a schema change not yet committed).
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

import mmib.config

REPO = Path(__file__).resolve().parents[1]
WORKSPACE_PARAMS = REPO / "params.yaml"


def _committed_params_text() -> str | None:
    try:
        out = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=REPO, capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        mmib.config.parse_params(yaml.safe_load(out.stdout))
    except Exception:  # the committed copy predates the code's schema: use the workspace
        return None
    return out.stdout


def _pin_params() -> Path:
    text = _committed_params_text()
    if text is None:
        return WORKSPACE_PARAMS
    folder = Path(tempfile.mkdtemp(prefix="mmib-test-params-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    pinned = folder / "params.yaml"
    pinned.write_text(text)
    return pinned


PINNED_PARAMS = _pin_params()
mmib.config.DEFAULT_PARAMS = PINNED_PARAMS

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
