"""Progress without a terminal (DVC stages, CI logs): one plain line every tenth of a stage."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from mmib.config import DEFAULT_PARAMS, parse_params
from mmib.methods.clib.estimator import CLIB
from mmib.recipes import apply_overrides

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(progress: bool) -> tuple[CLIB, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    views = [rng.normal(size=(40, d)).astype(np.float32) for d in (5, 3)]
    raw = apply_overrides(yaml.safe_load(DEFAULT_PARAMS.read_text()),
                          ["warmup.epochs=20", "model.latent_dim=4", "model.encoder_width=8", "model.head_width=8"])
    model = CLIB.from_params(parse_params(raw), 2, seed=3, progress=progress)
    model.device = "cpu"
    return model, views


def test_a_line_every_tenth_of_the_warmup_when_output_is_not_a_terminal(capsys):
    model, views = _model(progress=True)
    model.fit_warmup(views)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("warmup seed 3")]
    assert [int(re.search(r"epoch (\d+)/20", ln).group(1)) for ln in lines] == list(range(2, 21, 2))
    assert all(re.search(r"loss -?\d+\.\d{4} \(\d+\.\d s\)$", ln) for ln in lines)


def test_no_lines_when_progress_is_off(capsys):
    model, views = _model(progress=False)
    model.fit_warmup(views)
    assert "epoch" not in capsys.readouterr().out
