"""The estimators follow scikit-learn's conventions (CLIB, MSDIB, OMIB).

``__init__`` stores its arguments as given and sets nothing else, defaults
in the signature; validation happens when ``fit`` starts; ``get_params`` /
``set_params`` make ``sklearn.base.clone`` give an unfitted estimator with
equal params. ``CLIB()`` reads no params file: its defaults are the shipped
recipe in code (:mod:`mmib.methods.clib.defaults`), equal to the committed
params.yaml, and the stages' path (``registry.build``) passes every param.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.base import clone

import mmib.config
from mmib.config import parse_params
from mmib.errors import InputError
from mmib.methods import registry
from mmib.methods.clib import defaults as clib_defaults
from mmib.methods.clib.estimator import CLIB
from mmib.methods.msdib.estimator import MSDIB, MSDIBParams
from mmib.methods.omib.estimator import OMIB, OMIBParams
from mmib.recipes import apply_overrides
from shipped_params import shipped_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")
C = 3
TINY = {  # seconds on the CPU
    "clib": ["model.latent_dim=4", "model.encoder_width=8", "model.head_width=8", "model.mine_width=8",
             "warmup.epochs=1", "warmup.batch_size=16", "calibrate.epochs=1", "calibrate.cold_start_epochs=0"],
    "msdib": ["msdib.epochs=1", "msdib.batch_size=16", "msdib.latent_dim=4", "msdib.encoder_width=8",
              "msdib.ddc_hidden=4"],
    "omib": ["omib.warmup_epochs=1", "omib.epochs=1", "omib.batch_size=16", "omib.latent_dim=4", "omib.width=8",
             "omib.mine_steps=2"],
}


def _params(method: str):
    return parse_params(apply_overrides(shipped_params(), [f"method={method}", "device=cpu", *TINY[method]]))


def _fit(model, views, y):
    return model.fit(views, y) if isinstance(model, OMIB) else model.fit(views)


@pytest.mark.parametrize("method", ["clib", "msdib", "omib"])
def test_clone_gives_an_unfitted_estimator_with_equal_params(method, blobs):
    views, y = blobs(20, C)
    model = _fit(registry.build(_params(method), C, seed=4, progress=False), views, y)
    copy = clone(model)
    assert type(copy) is type(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "net_") and not hasattr(copy, "history_")
    # the clone trains to the same model (bit-identical on the CPU)
    np.testing.assert_array_equal(_fit(copy, views, y).predict_proba(views), model.predict_proba(views))


@pytest.mark.parametrize("cls", [CLIB, MSDIB, OMIB])
def test_init_stores_its_arguments_and_nothing_else(cls):
    model = cls()
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert sorted(vars(model)) == sorted(names)
    assert all(p.default is not inspect.Parameter.empty for p in inspect.signature(cls.__init__).parameters.values()
               if p.name != "self")
    odd = cls(n_clusters="3", seed=-1)  # stored as given, refused at fit time
    assert odd.n_clusters == "3" and odd.seed == -1


@pytest.mark.parametrize("cls", [CLIB, MSDIB, OMIB])
def test_set_params_then_fit_validates(cls, blobs):
    views, y = blobs(10, C)
    model = cls(C, device="cpu", progress=False).set_params(seed=-3)
    assert model.get_params()["seed"] == -3
    with pytest.raises(InputError) as exc:
        _fit(model, views, y)
    assert exc.value.field == "seed"


def test_clib_reads_no_params_file(monkeypatch, tmp_path):
    """CLIB() takes the shipped recipe from code; the library's params file is never opened."""
    monkeypatch.setattr(mmib.config, "DEFAULT_PARAMS", tmp_path / "missing.yaml")
    model = CLIB()
    assert (model.alpha, model.beta) == (clib_defaults.ALPHA, clib_defaults.BETA)
    assert (model.model, model.warmup, model.calibrate) == (clib_defaults.MODEL, clib_defaults.WARMUP,
                                                           clib_defaults.CALIBRATE)


def test_clib_defaults_are_the_committed_params_yaml():
    """One source of truth: the code's defaults equal params.yaml as committed (update both together)."""
    p = parse_params(shipped_params())
    fix = "params.yaml's recipe changed: copy it to src/mmib/methods/clib/defaults.py (CLIB()'s defaults)"
    assert (clib_defaults.ALPHA, clib_defaults.BETA) == (p.alpha, p.beta), fix
    assert clib_defaults.MODEL == p.model, fix
    assert clib_defaults.WARMUP == p.warmup, fix
    assert clib_defaults.CALIBRATE == p.calibrate, fix


def test_the_stages_build_every_param_from_params_yaml():
    """registry.build (the stages' path) passes every hyper-parameter, so no default reaches a stage."""
    p = _params("clib").model_copy(update={"alpha": 0.25})
    got = registry.build(p, C, seed=2, progress=False).get_params()
    assert got == {"n_clusters": C, "alpha": 0.25, "beta": p.beta, "model": p.model, "warmup": p.warmup,
                   "calibrate": p.calibrate, "seed": 2, "device": "cpu", "progress": False}
    for method, cls in (("msdib", MSDIB), ("omib", OMIB)):
        p = _params(method)
        got = registry.build(p, C, seed=2, progress=False).get_params()
        assert got == {"n_clusters": C, "config": getattr(p, method), "seed": 2, "device": "cpu",
                       "progress": False}


def test_msdib_and_omib_default_to_the_papers_protocol():
    assert MSDIB().config == MSDIBParams.paper_defaults()
    assert OMIB().config == OMIBParams.paper_defaults()


def test_omib_constants_are_params_with_the_shipped_values():
    """clip, clamp and EMA rate moved from module constants to params.yaml's omib section, values kept."""
    p = parse_params(shipped_params()).omib
    assert (p.mine_clamp, p.mine_ema_rate, p.grad_clip) == (10.0, 0.01, 5.0)
    d = OMIBParams.paper_defaults()
    assert (d.mine_clamp, d.mine_ema_rate, d.grad_clip) == (10.0, 0.01, 5.0)
