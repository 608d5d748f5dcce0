"""OMIB (ICML 2025) as a supervised reference estimator (METHOD.md section 5).

OMIB needs labels, so it is not a clustering method: the pipeline uses it as
the supervised ceiling on the same features. It trains on the rows
``train_idx`` of a stratified split (:func:`stratified_split`) and is scored
on the other rows; labels of the test rows are never read.

Two stages (``../shared/papers/OMIB-ICML2025-summary.md``):

1. Warm-up (task relevance branch): per view an encoder
   ``z_m = Enc_m(x_m)`` (MLP ``d_m -> width -> width -> H``, BN + ReLU) and a
   prediction head ``Dec_m([z_m, eps])`` with Gaussian noise
   ``eps ~ N(0, noise_std^2 I_H)`` in place of ``xi``; loss
   ``sum_m CE(y, Dec_m)``.
2. Main (optimal multimodal fusion), named ``fit_calibration`` so the
   pipeline's second stage calls it. First, once, the bound's information
   terms on the warm-up features of the training rows; then per batch
   ``mu_m, log sigma_m^2 = VAE_m(z_m)``, ``zeta_m = mu_m + sigma_m eps_m``,
   ``xi = CAN(zeta_1..zeta_M)`` and
   ``L = CE(y, q(y|xi)) + beta_eff (KL_0 + sum_{m>=1} r_m KL_m) + sum_m CE(y, Dec_m([z_m, xi]))``
   (the last term on detached inputs, see below), with
   ``beta_eff = min(beta, M_u)``.

Choices where the summary is silent (METHOD.md 5 fixes the rest):

- ``p(y_m | xi, z_m)`` of the weight r is ``Dec_m([z_m, xi])``: the warm-up
  head with the noise slot filled by ``xi`` (the summary's "warm-up uses
  random noise instead of MIB"). In the main stage the heads keep learning
  on ``[z_m.detach(), xi.detach()]`` (a side loss ``ce_dec``): it keeps
  ``p(y_m | xi, z_m)`` meaningful for the current ``xi`` without changing the
  gradient that reaches encoders, VAEs and fusion. ``p(y | xi)`` is
  ``q(y | xi)``, the fused head.
- r per batch from the batch's detached predictions, as ratio of means
  (METHOD.md 5; :func:`mmib.methods.omib.losses.dynamic_weight_r`). M > 2 views: view 0
  is the reference (weight 1); view m >= 1 gets r_m from view m vs view 0.
  ``history_['calibrate']['r']`` is the mean of the r_m (= r for M = 2).
- ``M_u = 1 / ((1 + sum_m r_m) H(v_1..v_M))`` per batch (it moves with r)
  with ``H(v_1..v_M) = sum_m H(v_m) - sum_{m>=1} I(v_m; v_0..v_{m-1})`` (chain
  rule; for M = 2 exactly the paper's ``H(v1) + H(v2) - I(v1; v2)``). The
  terms are estimated once, at the start of the main stage, on the warm-up
  features ``z_m`` of the training rows (eval mode, each dimension
  standardised: MI is invariant to that), all with MINE as the summary says
  ("computed ... via MINE"): ``H(v_m) = I(v_m; v_m)`` and each ``I`` by the
  Donsker-Varadhan bound (``bounds.mine_dv`` + ``networks.MineCritic``, one
  critic per term, ``mine_steps`` Adam steps on batches, then the bound on
  all training rows, floored at 0). One estimator for every term keeps the
  joint entropy consistent (two identical views give ``H1 + H2 - I = H1``).
  Rejected: a Gaussian log-det (or k-NN) differential entropy of ``z_m``:
  the warm-up features are nearly rank C, so on mfeat it gave -78..-269
  nats per view, a joint entropy of -985, hence no bound at all (and
  beta = 1 then collapsed the posterior). MINE's ``I(v; v)`` saturates near
  ``log(rows)`` (the empirical distribution's entropy; in practice about
  log(batch_size) + 0.3 after ``mine_steps``), so ``M_u`` is a bound on the
  empirical training distribution, of order 0.01-0.1. A joint entropy <= 0
  gives ``M_u = inf`` (no cap, a warning). Encoders keep training in the
  main stage; the bound is not re-estimated.
- ``VAE_m`` is a ``networks.VariationalEncoder`` ``H -> width -> width -> 2H``;
  L_OMF has no reconstruction term, so there is no VAE decoder.
- CAN: one ``nn.MultiheadAttention`` (4 heads when H % 4 == 0, else 1) over
  the M view tokens ``zeta_m`` with the diagonal masked, so each view's
  token attends only to the other views; residual + LayerNorm, then the
  mean over tokens is ``xi``. (For M = 2 each query has one key, so the
  attention weights are 1 and the block is a learned cross-view map.)
- Prediction: ``q(y|xi)`` on ``zeta_m = mu_m`` (no sampling), eval mode.
- MINE critic clamp, EMA rate and gradient-norm clip are params
  (``omib.mine_clamp``, ``mine_ema_rate``, ``grad_clip``: 10, 0.01 and 5, as
  CLIB's); no weight decay, fused Adam.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mmib.errors import InputError
from mmib.methods import bounds
from mmib.methods.base import EstimatorBase, _adam, _as_tensors
from mmib.methods.omib import losses as ol
from mmib.methods.omib.config import OMIBParams
from mmib.methods.omib.network import OMIBNet
from mmib.networks import MineCritic
from mmib.runtime import resolve_device, seed_everything

STATE_FORMAT = "mmib-omib-1"


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/test split: sorted int64 row indices ``(train_idx, test_idx)``."""
    from sklearn.model_selection import StratifiedShuffleSplit

    y = np.asarray(labels).reshape(-1)
    if not 0.0 < float(test_fraction) < 1.0:
        raise InputError(f"test_fraction must lie in (0, 1), got {test_fraction}", field="test_fraction",
                         fix="use e.g. 0.2")
    try:
        sss = StratifiedShuffleSplit(n_splits=1, test_size=float(test_fraction), random_state=int(seed))
        train, test = next(sss.split(np.zeros((y.shape[0], 1)), y))
    except ValueError as exc:  # a class with one member, or a split too small for C classes
        raise InputError(f"cannot make a stratified split: {exc}", field="labels",
                         fix="every class needs >= 2 samples and the test part >= one per class") from None
    return np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)


def _check_train_idx(train_idx: Any, n: int) -> np.ndarray:
    idx = np.asarray(train_idx).reshape(-1)
    if idx.size < 2 or not np.issubdtype(idx.dtype, np.integer):
        raise InputError(f"train_idx must hold >= 2 integer row indices, got {idx.size} of dtype {idx.dtype}",
                         field="train_idx", fix="pass the rows to train on, e.g. from stratified_split")
    if idx.min() < 0 or idx.max() >= n or np.unique(idx).size != idx.size:
        raise InputError(f"train_idx must be distinct indices in [0, {n})", field="train_idx",
                         fix="pass each training row once")
    return np.sort(idx).astype(np.int64)


def _train_labels(labels: Any, train_idx: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    """Labels of the training rows only (the test rows' entries are never read)."""
    y_all = np.asarray(labels).reshape(-1)
    if y_all.shape[0] != n:
        raise InputError(f"{y_all.shape[0]} labels for {n} samples", field="labels",
                         fix="pass one label per row (test rows may hold any placeholder)")
    y = y_all[train_idx]
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.equal(np.mod(y, 1), 0)):
        raise InputError("training labels must be integers", field="labels", fix="encode classes as 0..C-1")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= n_classes:
        raise InputError(f"training labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}",
                         field="labels", fix="encode classes as 0..C-1 (placeholders only on test rows)")
    return y


# ---------------------------------------------------------------- estimator
class OMIB(EstimatorBase):
    """Optimal Multimodal Information Bottleneck, a supervised multi-view classifier.

    ``OMIB(n_clusters)`` takes ``OMIBParams.paper_defaults()``; ``n_clusters``
    is the number of classes C (named as the other methods).
    """

    fit_hint = "call fit(views, labels) first"
    state_format = STATE_FORMAT
    config_type = OMIBParams
    config_section = "omib"
    arch_fields = ("latent_dim", "width")
    state_name = "an OMIB"
    state_fix = "re-run the OMIB warm-up stage"

    def __init__(self, n_clusters: int = 8, *, config: OMIBParams = OMIBParams.paper_defaults(), seed: int = 0,
                 device: str = "auto", progress: bool = True) -> None:
        self.n_clusters = n_clusters
        self.config = config
        self.seed = seed
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ public API
    def fit(self, views: list[np.ndarray], labels: np.ndarray, train_idx: np.ndarray | None = None) -> "OMIB":
        """Both stages. ``train_idx=None``: ``stratified_split(labels, test_fraction, seed)``."""
        self._check_params()
        if train_idx is None:
            train_idx, _ = stratified_split(labels, self.config.test_fraction, self.seed)
        return self.fit_warmup(views, labels, train_idx).fit_calibration(views, labels, train_idx)

    def predict_proba(self, views: list[np.ndarray]) -> np.ndarray:
        """``q(y | xi)`` with ``zeta_m = mu_m`` (no sampling), eval mode, for every row."""
        net, xs = self._fitted_inputs(views)
        with torch.no_grad():
            _, _, xi = net.fuse(net.embed(xs), sample=False)
            return torch.softmax(net.head(xi), dim=1).cpu().numpy()

    def transform(self, views: list[np.ndarray]) -> np.ndarray:
        """The fused representation ``xi`` on the posterior means."""
        net, xs = self._fitted_inputs(views)
        with torch.no_grad():
            return net.fuse(net.embed(xs), sample=False)[2].cpu().numpy()

    # ------------------------------------------------------------------ stage 1
    def fit_warmup(self, views: list[np.ndarray], labels: np.ndarray, train_idx: np.ndarray) -> "OMIB":
        """Stage 1: encoders and noise-fed heads on the training labels (CE per view)."""
        self._check_params()
        cfg = self.config
        self.device_ = resolve_device(self.device)
        gen = seed_everything(self.seed)
        xs = _as_tensors(views, self.device_)
        n = xs[0].shape[0]
        idx = _check_train_idx(train_idx, n)
        y_np = _train_labels(labels, idx, n, self.n_clusters)
        self.train_idx_, self.test_idx_ = idx, np.setdiff1d(np.arange(n), idx).astype(np.int64)
        self.dims_ = [int(x.shape[1]) for x in xs]
        self.net_ = OMIBNet(self.dims_, self.n_clusters, cfg.latent_dim, cfg.width).to(self.device_)
        self.bound_ = None
        self.history_ = {}
        net = self.net_
        xt, y = self._train_rows(xs, idx, y_np)
        opt = _adam(net.warmup_parameters(), cfg.lr, 0.0)

        def train_batch(b: torch.Tensor) -> dict:
            zs = net.embed([x[b] for x in xt])
            ces = [F.cross_entropy(dec(torch.cat([z, cfg.noise_std * torch.randn_like(z)], dim=1)), y[b])
                   for dec, z in zip(net.decoders, zs)]
            loss = torch.stack(ces).sum()
            self._step(opt, loss, net.warmup_parameters())
            return {**{f"ce_view{m}": ce.detach() for m, ce in enumerate(ces)},
                    "ce": loss.detach(), "total": loss.detach()}

        self.history_["warmup"] = self._train_epochs(cfg.warmup_epochs, "omib warmup", len(idx), cfg.batch_size, gen,
                                                    train_batch, shown="total")
        self.stages_done_ = ["warmup"]
        return self

    # ------------------------------------------------------------------ stage 2
    def fit_calibration(self, views: list[np.ndarray], labels: np.ndarray,
                        train_idx: np.ndarray | None = None) -> "OMIB":
        """Stage 2 (OMIB's main training): bound estimate, then L_OMF with dynamic r and beta <= M_u."""
        if "warmup" not in self._stages_done() or self.net_ is None:
            raise InputError("the main stage needs a warmed-up model", field="stage",
                             fix="call fit_warmup(views, labels, train_idx) first (or load a warm-up state)")
        gen, xs = self._begin_stage2(views)
        cfg = self.config
        n = xs[0].shape[0]
        if train_idx is not None and not np.array_equal(_check_train_idx(train_idx, n), self.train_idx_):
            raise InputError("train_idx differs from the warm-up's training rows", field="train_idx",
                             fix="pass the same split to both stages (or None to reuse the warm-up's)")
        if self.train_idx_.max() >= n:
            raise InputError("the views have fewer rows than the warm-up's split", field="views",
                             fix="pass the same views as at warm-up")
        idx = self.train_idx_
        y_np = _train_labels(labels, idx, n, self.n_clusters)
        net = self.net_.to(self.device_)
        xt, y = self._train_rows(xs, idx, y_np)
        self._estimate_bound(xt, gen)
        opt = _adam(net.parameters(), cfg.lr, 0.0)

        def train_batch(b: torch.Tensor) -> dict:
            loss, parts = self._omf_loss([x[b] for x in xt], y[b])
            self._step(opt, loss, list(net.parameters()))
            return parts

        self.history_["calibrate"] = self._train_epochs(cfg.epochs, "omib main", len(idx), cfg.batch_size, gen,
                                                    train_batch, shown="total")
        self.stages_done_ = ["warmup", "calibrate"]
        return self

    def _omf_loss(self, xb: list[torch.Tensor], yb: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        net, cfg = self.net_, self.config
        zs = net.embed(xb)
        mus, logvars, xi = net.fuse(zs, sample=True)
        logits = net.head(xi)
        ce = F.cross_entropy(logits, yb)
        kls = [bounds.gaussian_kl(mu, lv) for mu, lv in zip(mus, logvars)]
        # p(y_m | xi, z_m): the TRB heads with xi in the noise slot; detached inputs (side loss)
        xi_d = xi.detach()
        dec_logits = [dec(torch.cat([z.detach(), xi_d], dim=1)) for dec, z in zip(net.decoders, zs)]
        ce_dec = [F.cross_entropy(dl, yb) for dl in dec_logits]
        with torch.no_grad():
            log_q = F.log_softmax(logits, dim=1)
            cat_kl = [ol.categorical_kl(F.log_softmax(dl, dim=1), log_q) for dl in dec_logits]
            rs = torch.stack([ol.dynamic_weight_r(cat_kl[m], cat_kl[0]) for m in range(1, len(cat_kl))])
            m_u = ol.beta_upper_bound_multi(rs, self.bound_["entropies"], self.bound_["mis"])
            beta_eff = ol.effective_beta(cfg.beta, m_u)
        wkl = ol.weighted_kl(kls, rs)
        omf = ce + beta_eff.to(wkl.dtype) * wkl
        total, reported = ol.MAIN_OBJECTIVE.combine({"omf": omf, "ce_dec": torch.stack(ce_dec).sum()})
        parts: dict[str, torch.Tensor] = {"ce": ce.detach(), **reported, "r": rs.mean(), "beta_eff": beta_eff,
                                          "M_u": m_u}
        for m, kl in enumerate(kls):
            parts[f"kl_view{m}"] = kl.detach()
            parts[f"ce_dec_view{m}"] = ce_dec[m].detach()
            if m >= 1:
                parts[f"r_view{m}"] = rs[m - 1]
        return total, parts

    def _estimate_bound(self, xt: list[torch.Tensor], gen: torch.Generator) -> None:
        """The information terms of M_u, by MINE, on the warm-up features of the training rows.

        ``H(v_m) = I(v_m; v_m)`` and ``I(v_m; v_0..v_{m-1})`` (m >= 1), each a
        Donsker-Varadhan estimate with its own critic (see the module notes).
        """
        net = self.net_
        net.eval()
        with torch.no_grad():
            zs = net.embed(xt)
        std = [(z - z.mean(0)) / (z.std(0) + 1e-6) for z in zs]  # MI is invariant to this
        hist: dict[str, list[float]] = {}
        entropies, mis = [], []
        for m, a in enumerate(std):
            h, hist[f"mine_h_view{m}"] = self._mine(a, a, gen)
            entropies.append(h)
            hist[f"h_view{m}"] = [h]
        for m in range(1, len(std)):
            mi, hist[f"mine_mi_view{m}"] = self._mine(std[m], torch.cat(std[:m], dim=1), gen)
            mis.append(mi)
            hist[f"mi_view{m}"] = [mi]
        joint = ol.joint_entropy(entropies, mis)
        if not joint > 0:
            warnings.warn(f"OMIB: estimated joint entropy {joint:.3g} <= 0: M_u is +inf and beta is not capped",
                          RuntimeWarning, stacklevel=3)
        hist["joint_entropy"] = [joint]
        self.history_["bound"] = hist
        self.bound_ = {"entropies": entropies, "mis": mis, "joint_entropy": joint}

    def _mine(self, a: torch.Tensor, b: torch.Tensor, gen: torch.Generator) -> tuple[float, list[float]]:
        """MINE estimate of I(a; b): ``mine_steps`` critic steps on batches, then the DV bound on all rows.

        Returns the final estimate (floored at 0: MI is non-negative, an
        untrained critic can give a negative DV value) and the per-step batch
        estimates.
        """
        cfg = self.config
        n = a.shape[0]
        bs = min(cfg.batch_size, n)
        critic = MineCritic(a.shape[1], b.shape[1], cfg.width, cfg.mine_clamp).to(self.device_)
        opt = _adam(critic.parameters(), cfg.lr, 0.0)
        log_ema, trace = None, []
        for _ in range(cfg.mine_steps):
            rows = torch.randperm(n, generator=gen)[:bs].to(self.device_)
            perm = torch.randperm(bs, generator=gen).to(self.device_)
            t_joint, t_marg = critic.joint_and_marginal(a[rows], b[rows], perm)
            est, surrogate, log_ema = bounds.mine_dv(t_joint, t_marg, log_ema, cfg.mine_ema_rate)
            self._step(opt, -surrogate, list(critic.parameters()))
            trace.append(est.detach())
        with torch.no_grad():
            perm = torch.randperm(n, generator=gen).to(self.device_)
            t_joint, t_marg = critic.joint_and_marginal(a, b, perm)
            dv = t_joint.mean() - (torch.logsumexp(t_marg, dim=0) - math.log(n))
        return max(0.0, float(dv)), [float(v) for v in trace]

    # ------------------------------------------------------------------ plumbing
    def _train_rows(self, xs: list[torch.Tensor], idx: np.ndarray, y_np: np.ndarray
                    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        rows = torch.from_numpy(idx).to(self.device_)
        return [x.index_select(0, rows) for x in xs], torch.from_numpy(y_np).to(self.device_)

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params: list) -> None:
        self._optimiser_step(opt, loss, params, self.config.grad_clip)

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """Weights, split, bound estimates and history: enough to resume or predict."""
        return {
            **self._common_state(STATE_FORMAT),
            "config": self.config.model_dump(),
            "train_idx": self.train_idx_.tolist(),
            "test_idx": self.test_idx_.tolist(),
            "bound": None if self.bound_ is None else {k: (list(v) if isinstance(v, list) else v)
                                                        for k, v in self.bound_.items()},
            "history": self.saved_history(),
        }

    def _new_net(self) -> OMIBNet:
        return OMIBNet(self.dims_, self.n_clusters, self.config.latent_dim, self.config.width)

    def _load_extras(self, state: dict[str, Any]) -> None:
        self.train_idx_ = np.asarray(state["train_idx"], dtype=np.int64)
        self.test_idx_ = np.asarray(state["test_idx"], dtype=np.int64)
        self.bound_ = None if state["bound"] is None else dict(state["bound"])
