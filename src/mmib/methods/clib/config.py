"""CLIB's hyper-parameters: the top-level ``alpha`` / ``beta`` aside, params.yaml's ``model``,
``warmup`` and ``calibrate`` sections (and the empty ``clib:`` section).

Pydantic only (no torch), so :mod:`mmib.config` validates them without importing the method. No
field has a default: params.yaml is the source of truth (the library's defaults are
:mod:`mmib.methods.clib.defaults`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mmib.strict import NonNeg, Pos, StrictModel


class ModelParams(StrictModel):
    latent_dim: int = Pos
    encoder_width: int = Pos
    head_width: int = Pos
    mine_width: int = Pos


class WarmupParams(StrictModel):
    epochs: int = NonNeg
    batch_size: int = Field(ge=2)
    lr: float = Pos
    weight_decay: float = NonNeg
    kl_weight: float = NonNeg
    temperature: float = Pos
    mine_ema_rate: float = Field(gt=0, lt=1)
    mine_clamp: float = Pos
    grad_clip: float = Pos
    preservation: Literal["mine", "infonce", "none"]  # estimator of I(H^m; H^f) in Eq. 4
    reconstruction_weight: float = NonNeg            # per-view decoders x^m <- h^m; 0 = off (paper)
    projection_dim: int = NonNeg                     # NT-Xent on a projection of h^m; 0 = on h^m (paper)
    alignment_reduction: Literal["sum", "mean"]      # Eq. 3's alignment over the M(M-1)/2 view pairs


class LossSwitches(StrictModel):
    caliH: bool
    re: bool
    cluH: bool
    con: bool


class LossWeights(StrictModel):
    caliH: float = NonNeg
    re: float = NonNeg
    cluH: float = NonNeg
    con: float = NonNeg


class CalibrateParams(StrictModel):
    epochs: int = NonNeg
    lr: float = Pos
    screening: Literal["s1", "s2", "s3", "maxprob"]
    cold_start_epochs: int = NonNeg
    kmeans_n_init: int = Pos
    kmeans_warm_start: bool
    kmeans_backend: Literal["auto", "sklearn", "torch"]  # the per-epoch K-Means: auto = torch on CUDA, sklearn on the CPU
    losses: LossSwitches
    weights: LossWeights
    con_reduction: Literal["sum", "mean"]
    warmup_free: bool
    cal_heads_backprop: bool
    cold_start_clusters: Literal["kmeans", "spectral", "spectral_views"]  # the partition the cold start fits the heads to
    pseudo_clusters: Literal["kmeans", "spectral", "head"]  # Q_c of Section 3.2.1, every epoch
    targets: Literal["cluster_mean", "hungarian"]    # q_c (Eq. 7) or matched hard Q_c labels
    screening_rank: Literal["score", "maxprob"]      # which K_m samples Eq. 9 keeps
    screening_agreement: bool                        # keep a screened pair only if it agrees with the cluster head
    caliH_reduction: Literal["sum", "mean"]          # L_caliH over views: sum (Eq. 7) or mean
    balance_weight: float = NonNeg                   # negative entropy of the cluster head's batch mean
    batch_per_cluster: float = NonNeg                # stage-2 batch >= this x C samples (batch-mean terms); 0 = off
    keep_ib: bool                                    # L_IB in stage 2 (Eq. 2); false = alpha * L_Cal alone (L_IB measured at weight 0)
    confidence: Literal["head", "seeds", "seeds_and_ncuts"]  # the head's softmax, or a temperature per seed (mmib.confidence)


class CLIBSection(StrictModel):
    """``clib:``, empty: CLIB reads the top-level alpha, beta, model, warmup, calibrate. The section
    exists so dvc.yaml's ``${method}`` names the active method's section for every method."""
