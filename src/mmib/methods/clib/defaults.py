"""CLIB's library defaults: the shipped recipe, i.e. the values of params.yaml as committed.

``CLIB()`` outside the pipeline takes these; it never reads a params file.
The pipeline does not use them: its stages build CLIB from params.yaml
(:meth:`mmib.methods.clib.estimator.CLIB.from_params`), the one source of truth of
every param. tests/test_clib_estimator.py checks that these values equal
the committed params.yaml, so a change of the recipe that forgets them fails
the suite.
"""

from __future__ import annotations

from mmib.config import CalibrateParams, LossSwitches, LossWeights, ModelParams, WarmupParams

ALPHA = 0.5
BETA = 0.5
MODEL = ModelParams(latent_dim=256, encoder_width=512, head_width=512, mine_width=512)
WARMUP = WarmupParams(
    epochs=40, batch_size=64, lr=0.001, weight_decay=0.0, kl_weight=0.001, temperature=0.5,
    mine_ema_rate=0.01, mine_clamp=10.0, grad_clip=5.0, preservation="none", reconstruction_weight=1.0,
    projection_dim=128, alignment_reduction="mean")
CALIBRATE = CalibrateParams(
    epochs=20, lr=0.001, screening="s2", cold_start_epochs=5, kmeans_n_init=10, kmeans_warm_start=True,
    kmeans_backend="auto",
    losses=LossSwitches(caliH=True, re=True, cluH=True, con=False),
    weights=LossWeights(caliH=2.0, re=1.0, cluH=1.0, con=2.0),
    con_reduction="mean", warmup_free=False, cal_heads_backprop=False, cold_start_clusters="spectral_views",
    pseudo_clusters="head", targets="cluster_mean", screening_rank="score", screening_agreement=True,
    caliH_reduction="mean", balance_weight=1.0, batch_per_cluster=2.0, keep_ib=True,
    confidence="seeds_and_ncuts")
