"""MSDIB (AAAI 2025) as a scikit-learn style estimator, interchangeable with CLIB in the pipeline.

Multi-aspect Self-guided Deep Information Bottleneck (Hu et al., AAAI 2025;
``../shared/papers/MSDIB-AAAI2025-paper.md``), with the open choices fixed by
``../shared/docs/METHOD.md`` section 4. One end-to-end objective (Eq. 1):

    ``L = L_DDC - alpha * L_IP + beta * L_IC``

* Encoders as CLIB's (variational, ``d -> w -> w -> 2H``), weighted-mean fusion ``h^s``.
* ``L_IC = kl_weight * mean_m KL_m + (1/M) sum_{i<j} I(H^i; H^j)`` (minimised).
* ``L_IP = sum_m I(H^m; H^s) + sum_m I(Y^m; Y^s)`` (maximised), IIC estimator,
  feature MI on ``softmax(h)``.
* ``L_DDC``: the three DDC terms on the fused head's assignment.
* Heads (fused and per view): the DDC module ``Linear(H, 100) - ReLU - BN -
  Linear(100, C) - softmax`` (Kampffmeyer et al. 2019); the kernel of the
  CS terms is computed on the fused head's 100-unit hidden layer.

MSDIB pre-trains nothing, so ``fit_warmup`` only builds (and seeds) the
network and records an empty ``warmup`` history: the pipeline's first stage
stays a cheap no-op and its second stage calls ``fit_calibration``, the whole
training. The loss terms are pure functions in :mod:`mmib.methods.msdib.losses`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mmib.errors import InputError
from mmib.methods.base import WeightedFusionEstimator, _adam, _as_tensors
from mmib.methods.msdib import losses as L
from mmib.methods.msdib.config import MSDIBParams
from mmib.methods.msdib.network import MSDIBNet
from mmib.runtime import resolve_device, seed_everything

STATE_FORMAT = "mmib-msdib-1"
LOSS_TERMS = ("ddc_cs", "ddc_orth", "ddc_simplex", "ddc", "kl", "mi_views", "l_ic",
              "mi_feat", "mi_assign", "l_ip", "total", "loss")


class MSDIB(WeightedFusionEstimator):
    """Multi-aspect Self-guided Deep Information Bottleneck for multi-modal clustering.

    ``MSDIB(n_clusters)`` takes the paper's protocol (``MSDIBParams.paper_defaults()``,
    whose unweighted KL collapses the posterior: pass ``config`` with a smaller
    ``kl_weight``, as params.yaml's ``msdib:`` does). The estimator never sees
    labels: ``fit`` takes only the views (``y`` is ignored).
    """

    state_format = STATE_FORMAT
    config_type = MSDIBParams
    config_section = "msdib"
    arch_fields = ("latent_dim", "encoder_width", "ddc_hidden")
    state_name = "an MSDIB"
    state_fix = "re-run the MSDIB warm-up stage for this dataset"

    def __init__(self, n_clusters: int = 8, *, config: MSDIBParams = MSDIBParams.paper_defaults(), seed: int = 0,
                 device: str = "auto", progress: bool = True) -> None:
        self.n_clusters = n_clusters
        self.config = config
        self.seed = seed
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ public API
    def predict_proba(self, views: list[np.ndarray]) -> np.ndarray:
        """Fused (DDC) head's softmax on the posterior means, eval mode."""
        net, xs = self._fitted_inputs(views)
        with torch.no_grad():
            enc = net.encode(xs, sample=False)
            return torch.softmax(net.fused_head(enc.fused)[0], dim=1).cpu().numpy()

    # ------------------------------------------------------------------ stage 1 (none)
    def fit_warmup(self, views: list[np.ndarray]) -> "MSDIB":
        """MSDIB pre-trains nothing: validate the views, build the seeded network, record an empty history."""
        self._check_params()
        self.device_ = resolve_device(self.device)
        seed_everything(self.seed)
        xs = _as_tensors(views, self.device_)
        self._build(xs)
        self.history_ = {"warmup": {}}
        self.stages_done_ = ["warmup"]
        return self

    # ------------------------------------------------------------------ stage 2: the training
    def fit_calibration(self, views: list[np.ndarray]) -> "MSDIB":
        """The end-to-end training on Eq. 1 (named for the pipeline's second stage)."""
        if "warmup" not in self._stages_done() or self.net_ is None:
            raise InputError("training needs a built model", field="stage",
                             fix="call fit_warmup(views) first (or load a warm-up state), or use fit(views)")
        gen, xs = self._begin_stage2(views)
        cfg = self.config
        net = self.net_.to(self.device_)
        params = list(net.parameters())
        opt = _adam(params, cfg.lr, 0.0)

        def train_batch(idx: torch.Tensor) -> dict:
            loss, parts = self._batch_loss([x[idx] for x in xs])
            self._optimiser_step(opt, loss, params, cfg.grad_clip)
            return parts

        self.history_["calibrate"] = self._train_epochs(cfg.epochs, "msdib", xs[0].shape[0], cfg.batch_size, gen,
                                                        train_batch)
        self.stages_done_ = ["warmup", "calibrate"]
        return self

    # ------------------------------------------------------------------ loss
    def _batch_loss(self, xb: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. 1 on one batch (training mode: sampled ``h^m``); returns the loss and detached terms."""
        cfg, net = self.config, self.net_
        enc = net.encode(xb, sample=True)
        fused_logits, fused_hidden = net.fused_head(enc.fused)
        fused_probs = torch.softmax(fused_logits, dim=1)
        view_probs = [torch.softmax(head(h)[0], dim=1) for head, h in zip(net.view_heads, enc.hs)]
        terms = L.ddc_terms(fused_probs, fused_hidden)
        terms["kl"], terms["mi_views"] = L.compression_terms(enc.mus, enc.logvars, enc.hs)
        terms["l_ic"] = L.compression_loss(terms["kl"], terms["mi_views"], cfg.kl_weight)
        terms["mi_feat"], terms["mi_assign"] = L.preservation_terms(enc.hs, enc.fused, view_probs, fused_probs)
        terms["l_ip"] = terms["mi_feat"] + terms["mi_assign"]
        loss, reported = L.eq1_objective(cfg.alpha, cfg.beta).combine(terms)
        parts = {k: v.detach() for k, v in terms.items()}
        parts["total"] = parts["loss"] = reported["total"]
        return loss, parts

    # ------------------------------------------------------------------ plumbing
    def _build(self, xs: list[torch.Tensor]) -> None:
        if self.n_clusters > xs[0].shape[0]:
            raise InputError(f"{self.n_clusters} clusters for {xs[0].shape[0]} samples", field="n_clusters",
                             fix="use fewer clusters than samples")
        self.dims_ = [int(x.shape[1]) for x in xs]
        self.net_ = MSDIBNet(self.dims_, self.n_clusters, self.config).to(self.device_)

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """Everything needed to resume or predict: weights, config, history."""
        return {
            **self._common_state(STATE_FORMAT),
            "config": self.config.model_dump(),
            "history": self.saved_history(),
        }

    def _new_net(self) -> MSDIBNet:
        return MSDIBNet(self.dims_, self.n_clusters, self.config)
