"""CLIB (ICLR 2026) as a scikit-learn style estimator.

Two stages (Section 3.1, 4.1; METHOD.md section 1):

1. IB warm-up: ``L_IB = sum_m KL_m - sum_{i<j} I_nce(i, j) - beta sum_m I_mine(m)`` (Eq. 3-5).
2. Calibration: ``L_IB + alpha * L_Cal`` with
   ``L_Cal = L_caliH + L_re + L_cluH + L_con`` (Eq. 2, 6-11), after a cold start
   of the heads on K-Means labels (METHOD.md; a switch).

The estimator never sees labels: ``fit`` takes only the views. The pipeline
stages call ``fit_warmup`` and ``fit_calibration`` separately so DVC can cache
the warm-up; ``fit`` runs both and gives the same numbers on the CPU.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans

from mmib.methods.clib import device_kmeans, losses
from mmib.config import CalibrateParams, ModelParams, Params, WarmupParams
from mmib.errors import InputError
from mmib.methods.clib import defaults as shipped
from mmib.methods.base import WeightedFusionEstimator, _adam, _as_tensors, _batches
from mmib.methods.clib.network import CLIBNet, Encoded
from mmib.methods.clib.objectives import calibration_objective, ib_objective, stage2_objective
from mmib.methods.objective import Bound, Surrogate
from mmib.methods.trace import TrainingTrace
from mmib.runtime import resolve_device, seed_everything
from mmib.training_record import COLD_START_LOSS, KMEANS_INERTIA, screened_key
from mmib.validation import check_args

STATE_FORMAT = "mmib-clib-1"
PER_SAMPLE_TARGETS = ("target", "selected", "pseudo")
"""The keys of :meth:`CLIB._epoch_targets` with one row per sample (a batch takes its rows)."""


class CLIB(WeightedFusionEstimator):
    """Calibrated Information Bottleneck for trusted multi-modal clustering.

    Parameters mirror params.yaml: ``alpha``/``beta`` (Eq. 2, 5), ``model``,
    ``warmup`` and ``calibrate`` sections. Their defaults are the shipped
    recipe (:mod:`mmib.methods.clib.defaults`, equal to the committed
    params.yaml); no params file is read. The stages build CLIB from
    params.yaml with :meth:`from_params`.
    """

    state_format = STATE_FORMAT
    state_name = "a CLIB"
    state_fix = "re-run the warm-up stage: dvc repro warmup@<dataset>"

    def __init__(self, n_clusters: int = 8, *, alpha: float = shipped.ALPHA, beta: float = shipped.BETA,
                 model: ModelParams = shipped.MODEL, warmup: WarmupParams = shipped.WARMUP,
                 calibrate: CalibrateParams = shipped.CALIBRATE, seed: int = 0, device: str = "auto",
                 progress: bool = True) -> None:
        self.n_clusters = n_clusters
        self.alpha = alpha
        self.beta = beta
        self.model = model
        self.warmup = warmup
        self.calibrate = calibrate
        self.seed = seed
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        check_args("CLIB", {"model": [ModelParams], "warmup": [WarmupParams], "calibrate": [CalibrateParams]},
                   n_clusters=self.n_clusters, alpha=self.alpha, beta=self.beta, model=self.model,
                   warmup=self.warmup, calibrate=self.calibrate, seed=self.seed, device=self.device,
                   progress=self.progress)

    def set_temperature(self, temperature: float) -> "CLIB":
        """Scale the confidence of :meth:`predict_proba` by ``softmax(logits / T)`` (argmax unchanged).

        The calibrate stage fits T label-free from the other seeds' agreement
        (:func:`mmib.confidence.agreement_temperatures`); API users can do the
        same with their seeds' ``predict_proba(views, raw=True)`` and
        :func:`mmib.confidence.reference_partitions`.
        """
        if not (np.isfinite(temperature) and temperature > 0):
            raise InputError(f"temperature must be a positive finite number, got {temperature!r}",
                             field="temperature", fix="use mmib.confidence.agreement_temperatures")
        self.temperature_ = float(temperature)
        return self

    @classmethod
    def from_params(cls, params: Params, n_clusters: int, seed: int, progress: bool = True) -> "CLIB":
        return cls(n_clusters, alpha=params.alpha, beta=params.beta, model=params.model,
                   warmup=params.warmup, calibrate=params.calibrate, seed=seed,
                   device=params.device, progress=progress)

    # ------------------------------------------------------------------ epochs
    @property
    def warmup_epochs(self) -> int:
        """Table 2 row I (no warm-up) moves the warm-up budget into calibration."""
        return 0 if self.calibrate.warmup_free else self.warmup.epochs

    @property
    def calibration_epochs(self) -> int:
        extra = self.warmup.epochs if self.calibrate.warmup_free else 0
        return self.calibrate.epochs + extra

    # ------------------------------------------------------------------ public API
    @property
    def calibration_batch_size(self) -> int:
        """Stage 2's batch: ``warmup.batch_size``, raised to ``calibrate.batch_per_cluster`` x C.

        The balance term and L_re (Eq. 8) act on a batch's mean prediction;
        a batch smaller than C cannot hold every cluster, so their optimum is
        a spread of every prediction, not a balanced partition: on 100Leaves
        (C = 100, batch 64) the head then drifts 98 -> 94 during calibration.
        """
        return max(self.warmup.batch_size, math.ceil(self.calibrate.batch_per_cluster * self.n_clusters))

    def predict_proba(self, views: list[np.ndarray], raw: bool = False) -> np.ndarray:
        """Cluster-head probabilities on the posterior means, eval mode (METHOD.md), scaled by the
        fitted temperature (:meth:`set_temperature`) unless ``raw``."""
        net, xs = self._fitted_inputs(views)
        temperature = 1.0 if raw else self.temperature_
        with torch.no_grad():
            enc = net.encode(xs, sample=False)
            return torch.softmax(net.cluster_head(enc.fused) / temperature, dim=1).cpu().numpy()

    # ------------------------------------------------------------------ stage 1
    def fit_warmup(self, views: list[np.ndarray]) -> "CLIB":
        """Stage 1: train encoders, fusion and critics on L_IB alone (Eq. 5)."""
        self._check_params()
        self.device_ = resolve_device(self.device)
        gen = seed_everything(self.seed)
        xs = _as_tensors(views, self.device_)
        self._build(xs)
        net = self.net_
        opt = _adam(net.ib_parameters(), self.warmup.lr, self.warmup.weight_decay)

        def train_batch(idx: torch.Tensor) -> dict:
            xb = [x[idx] for x in xs]
            loss, parts = self._ib_loss(xb, net.encode(xb, sample=True))
            self._step(opt, loss, net.ib_parameters())
            return parts

        self.history_["warmup"] = self._train_epochs(
            self.warmup_epochs, "warmup", xs[0].shape[0], self.warmup.batch_size, gen, train_batch,
            after_epoch=lambda epoch: self._trace_warmup_epoch(xs, epoch))
        self.stages_done_ = ["warmup"]
        return self

    # ------------------------------------------------------------------ stage 2
    def fit_calibration(self, views: list[np.ndarray]) -> "CLIB":
        """Stage 2: cold start, then ``L_IB + alpha * L_Cal`` with per-epoch targets and screening."""
        gen, xs, hist = self._begin_calibration(views)
        net = self.net_
        opt = _adam(net.parameters(), self.calibrate.lr, self.warmup.weight_decay)
        targets: dict[str, Any] = {}

        def next_targets(epoch: int) -> None:  # Q_c, q_c and the screening, once per epoch (Eq. 7-10)
            targets.clear()
            targets.update(self._epoch_targets(xs, epoch))

        def train_batch(idx: torch.Tensor) -> dict:
            per_sample = {k: targets[k][idx] for k in PER_SAMPLE_TARGETS}
            loss, parts = self._calibration_loss([x[idx] for x in xs], per_sample)
            self._step(opt, loss, list(net.parameters()))
            return parts

        hist = self._train_epochs(self.calibration_epochs, "calibrate", xs[0].shape[0], self.calibration_batch_size,
                                  gen, train_batch, before_epoch=next_targets,
                                  epoch_values=lambda: screened_values(targets), hist=hist)
        self._end_calibration(xs, hist)
        return self

    def _begin_calibration(self, views: list[np.ndarray]) -> tuple[torch.Generator, list[torch.Tensor], dict]:
        """Stage 2 up to its first epoch: the stage's start (:meth:`_begin_stage2`: its seed, the batch-order
        generator), no K-Means centroids or temperature from before, the cold start of the heads.
        Returns the generator, the views on the device and the history so far (the cold start's)."""
        self._require_warmup()
        gen, xs = self._begin_stage2(views)
        self.net_.to(self.device_)
        self._kmeans_centers = None
        self.temperature_ = 1.0  # a new calibration: any earlier temperature no longer applies
        self.trace_.reset_calibration()
        hist: dict[str, list[float]] = defaultdict(list)
        self._cold_start(xs, gen, hist)
        return gen, xs, hist

    def _require_warmup(self) -> None:
        """Refuse to calibrate a model that holds no warm-up."""
        if "warmup" not in self._stages_done():
            raise InputError("calibration needs a warmed-up model", field="stage",
                             fix="call fit_warmup(views) first (or load a warm-up state)")

    def _end_calibration(self, xs: list[torch.Tensor], hist: dict[str, list[float]]) -> None:
        """After the last epoch: the trace's final cluster-head predictions, the stage's history."""
        p_clu, _ = self._eval_outputs(xs)[1:]
        self.trace_.add_calibration(p_clu.cpu().numpy())
        self.history_["calibrate"] = dict(hist)
        self.stages_done_ = ["warmup", "calibrate"]

    # ------------------------------------------------------------------ losses
    def _ib_loss(self, xb: list[torch.Tensor], enc: Encoded) -> tuple[torch.Tensor, dict[str, float]]:
        """L_IB on one batch (Eq. 5): weighted KL + NT-Xent over pairs - beta * I(H^m; H^f),
        plus the reconstruction term when it is switched on.

        ``warmup.preservation`` picks the estimator of Eq. 4: ``mine`` (the
        paper, Section 3.3: Donsker-Varadhan with the bias-corrected gradient),
        ``infonce`` (the bounded InfoNCE bound ``log B - NT-Xent(h^m, h^f)``,
        Theorem 3's estimator) or ``none``. NT-Xent acts on the projection
        heads when ``warmup.projection_dim`` > 0.
        """
        net, w = self.net_, self.warmup
        kl = sum(losses.gaussian_kl(mu, lv) for mu, lv in zip(enc.mus, enc.logvars))
        zs = [proj(h) for proj, h in zip(net.projections, enc.hs)] if len(net.projections) else enc.hs
        pairs = list(itertools.combinations(range(len(zs)), 2))
        nce = sum(losses.info_nce(zs[i], zs[j], w.temperature) for i, j in pairs)
        if w.alignment_reduction == "mean":  # a mean over pairs: 2 views are unchanged, 6 views get 1/15
            nce = nce / len(pairs)
        terms = {"kl": kl, "nce": nce}
        if w.preservation == "mine":
            perm = torch.randperm(enc.fused.shape[0], device=enc.fused.device)
            mine_est, mine_sur = [], []
            for m, h in enumerate(enc.hs):
                t_joint, t_marg = net.critics[m].joint_and_marginal(h, enc.fused, perm)
                est, sur, self._mine_log_ema[m] = losses.mine_dv(t_joint, t_marg, self._mine_log_ema[m],
                                                                 w.mine_ema_rate)
                mine_est.append(est)
                mine_sur.append(sur)
            terms["mine"] = Bound(-torch.stack(mine_sur).sum(), torch.stack(mine_est).sum())
        elif w.preservation == "infonce":  # minimising NT-Xent(h^m, h^f) maximises sum_m (log B - NT-Xent)
            pres_nce = sum(losses.info_nce(h, enc.fused, w.temperature) for h in enc.hs)
            terms["preservation"] = Bound(pres_nce, len(enc.hs) * math.log(enc.fused.shape[0]) - pres_nce)
        if len(net.decoders):
            terms["recon"] = losses.reconstruction_loss(xb, [dec(h) for dec, h in zip(net.decoders, enc.hs)])
        loss, parts = ib_objective(w, self.beta).combine(terms)
        parts["loss"] = parts["ib"]
        return loss, parts

    def _calibration_loss(self, xb: list[torch.Tensor], tb: dict[str, torch.Tensor]
                          ) -> tuple[torch.Tensor, dict[str, float]]:
        net = self.net_
        enc = net.encode(xb, sample=True)
        ib_loss, parts = self._ib_loss(xb, enc)
        clu_logp = F.log_softmax(net.cluster_head(enc.fused), dim=1)
        # stop-gradient (Section 3.2.1 Note): calibration heads read detached h^m
        cal_in = enc.hs if self.calibrate.cal_heads_backprop else [h.detach() for h in enc.hs]
        cal_logp = [F.log_softmax(head(h), dim=1) for head, h in zip(net.cal_heads, cal_in)]
        cal_p = [lp.exp() for lp in cal_logp]
        l_cal, cal_parts = calibration_objective(self.calibrate).combine({
            "caliH": lambda: losses.calibration_head_loss(tb["target"], cal_logp) / self._view_divisor(self.calibrate.caliH_reduction),
            "re": lambda: losses.entropy_regulariser(cal_p),
            "cluH": lambda: losses.cluster_head_loss(clu_logp, tb["pseudo"], tb["selected"]),
            "con": lambda: losses.consistency_loss(cal_p, clu_logp) / self._view_divisor(self.calibrate.con_reduction),
            "balance": lambda: losses.entropy_regulariser([clu_logp.exp()]),  # spreads the head's batch mean
        })
        loss, total_parts = stage2_objective(self.alpha, self.calibrate.keep_ib).combine(
            {"ib": Surrogate(ib_loss, parts["ib"]), "cal": l_cal})
        return loss, {**parts, **cal_parts, **total_parts}

    def _view_divisor(self, reduction: str) -> int:
        """``mean`` divides a sum over views (Eq. 7, Eq. 11) by M; ``sum`` keeps the paper's sum."""
        return self.net_.n_views if reduction == "mean" else 1

    # ------------------------------------------------------------------ stage 2 helpers
    def _kmeans_backend(self) -> str:
        """``calibrate.kmeans_backend`` resolved: ``auto`` is torch on a CUDA device, sklearn on the CPU
        (whose numbers the published tables came from, bit for bit)."""
        backend = self.calibrate.kmeans_backend
        if backend == "auto":
            return "torch" if self.device_.type == "cuda" else "sklearn"
        return backend

    def _kmeans_input(self, features: torch.Tensor) -> np.ndarray | torch.Tensor:
        """Detached fused features as the K-Means backend takes them: float64 NumPy for sklearn (as the
        model has always called it), a float64 tensor where they are for torch."""
        if self._kmeans_backend() == "torch":
            return features.detach().to(torch.float64)
        return features.detach().cpu().numpy().astype(np.float64)

    def _kmeans(self, features: torch.Tensor, salt: int, previous: np.ndarray | torch.Tensor | None
                ) -> tuple[Any, Any, Any]:
        """Seeded K-Means on detached fused features: ``(labels, centres, inertia)``.

        With ``kmeans_warm_start`` a fit that has ``previous`` centroids starts
        from them (one run), so the pseudo-clusters Q_c of consecutive epochs
        stay consistent; otherwise ``kmeans_n_init`` k-means++ restarts.
        sklearn gives NumPy arrays and a float; torch (:func:`batched_kmeans`)
        tensors on the training device.
        """
        if self._kmeans_backend() == "torch":
            fit = batched_kmeans([self], features.unsqueeze(0), salt, [previous])
            return fit.labels[0], fit.centers[0], fit.inertia[0]
        x = self._kmeans_input(features)
        rs = self._kmeans_random_state(salt)
        if self.calibrate.kmeans_warm_start and previous is not None:
            km = KMeans(self.n_clusters, init=previous, n_init=1, random_state=rs).fit(x)
        else:
            km = KMeans(self.n_clusters, n_init=self.calibrate.kmeans_n_init, random_state=rs).fit(x)
        return km.labels_, km.cluster_centers_, float(km.inertia_)

    def _kmeans_random_state(self, salt: int) -> int:
        """The seed of one K-Means call: sklearn's random_state, the torch generator's seed."""
        return (self.seed * 7919 + salt) % (2**31 - 1)

    def _pseudo_clusters(self, features: torch.Tensor, salt: int, mode: str) -> tuple[Any, Any]:
        """Pseudo-clusters of the fused features and the K-Means inertia (NaN for spectral).

        ``mode`` ``kmeans``: the paper's K-Means, warm-started from the last
        partition's centroids; ``spectral``: normalized cut on the symmetrised
        10-NN graph of the features (as the ALLNcuts baseline), seeded per
        call; its cluster means then seed the next warm-started K-Means.
        With the torch backend the labels, centres and inertia stay tensors on
        the device (the inertia is read when the epoch is recorded).
        """
        if mode == "spectral":
            from mmib.baselines import ncuts_predict
            rs = self._kmeans_random_state(salt)
            x = self._kmeans_input(features)  # float64, where the warm-started K-Means wants its centroids
            labels = ncuts_predict(x.cpu().numpy() if torch.is_tensor(x) else x, self.n_clusters, rs)
            self._kmeans_centers = self._cluster_means(x, labels)
            return labels, float("nan")
        labels, self._kmeans_centers, inertia = self._kmeans(features, salt, self._kmeans_centers)
        return labels, inertia

    def _cluster_means(self, x: np.ndarray | torch.Tensor, labels: Any) -> np.ndarray | torch.Tensor:
        """Each cluster's mean row of ``x`` (row k for an empty cluster k): centroids to warm-start K-Means.
        ``x`` a tensor: computed where it is, a tensor."""
        if torch.is_tensor(x):
            hot = F.one_hot(torch.as_tensor(labels, device=x.device).long(), self.n_clusters).to(x.dtype)
            counts = hot.sum(0).unsqueeze(1)
            return torch.where(counts > 0, hot.t() @ x / counts.clamp_min(1), x[:self.n_clusters])
        return np.stack([x[labels == k].mean(axis=0) if np.any(labels == k) else x[k]
                         for k in range(self.n_clusters)])

    def _eval_outputs(self, xs: list[torch.Tensor]) -> tuple[Encoded, torch.Tensor, list[torch.Tensor]]:
        """Encodings on the posterior means, cluster-head and calibration-head probabilities (eval mode)."""
        net, enc = self.net_, self._eval_encoded(xs)
        with torch.no_grad():
            p_clu = torch.softmax(net.cluster_head(enc.fused), dim=1)
            p_cal = [torch.softmax(head(h), dim=1) for head, h in zip(net.cal_heads, enc.hs)]
        return enc, p_clu, p_cal

    def _trace_warmup_epoch(self, xs: list[torch.Tensor], epoch: int) -> None:
        """Figure 3 during the warm-up: K-Means of h^f after the epoch (its own centroid chain,
        seeded apart from training's, so the trace never changes the trained model)."""
        trace_warmup_epochs([self], xs, epoch)

    def _eval_encoded(self, xs: list[torch.Tensor]) -> Encoded:
        """The encodings on the posterior means (h^m and h^f), eval mode, no gradient."""
        self.net_.eval()
        with torch.no_grad():
            return self.net_.encode(xs, sample=False)

    def _cold_start(self, xs: list[torch.Tensor], gen: torch.Generator, hist: dict) -> None:
        """Fit the heads on a partition of the fused features (``calibrate.cold_start_clusters``: K-Means as
        METHOD.md, a normalized cut of h^f, or of h^f beside the raw views), encoders frozen."""
        hist[COLD_START_LOSS] = []
        if self.calibrate.cold_start_epochs == 0:
            return
        net, enc = self.net_, self._eval_encoded(xs)
        mode, features = self.calibrate.cold_start_clusters, enc.fused
        if mode == "spectral_views":  # h^f and the raw views, one block each (baselines.joint_features)
            from mmib.baselines import joint_features
            features = torch.from_numpy(joint_features(enc.fused.cpu().numpy(), [x.cpu().numpy() for x in xs]))
            mode = "spectral"
        labels, _ = self._pseudo_clusters(features, salt=-1, mode=mode)
        if features is not enc.fused:  # later K-Means warm starts need centroids in h^f's space
            self._kmeans_centers = self._cluster_means(self._kmeans_input(enc.fused), labels)
        labels = _label_tensor(labels, self.device_)
        opt = _adam(net.head_parameters(), self.calibrate.lr, 0.0)
        net.cluster_head.train()
        net.cal_heads.train()
        for epoch in range(self.calibrate.cold_start_epochs):
            total, batches = 0.0, _batches(xs[0].shape[0], self.warmup.batch_size, gen)
            for idx in batches:
                y = labels[idx]
                loss = F.cross_entropy(net.cluster_head(enc.fused[idx]), y)
                loss = loss + sum(F.cross_entropy(head(h[idx]), y) for head, h in zip(net.cal_heads, enc.hs))
                self._step(opt, loss, net.head_parameters())
                total = total + loss.detach()
            hist[COLD_START_LOSS].append(float(total) / max(len(batches), 1))
            self._check_finite({"loss": hist[COLD_START_LOSS]}, epoch, self.calibrate.cold_start_epochs, "cold start")

    def _epoch_targets(self, xs: list[torch.Tensor], epoch: int) -> dict[str, Any]:
        """Per-epoch targets over all N samples (Section 3.2.1-3.2.2).

        K-Means on the detached fused features gives pseudo-clusters Q_c
        (``calibrate.pseudo_clusters``: or a normalized cut, or the cluster
        head's own argmax partition);
        q_c is the mean cluster-head prediction over Q_c (target of L_caliH).
        Each view's calibration predictions are screened (Eq. 9) into the
        pseudo-label set S used by L_cluH.
        """
        enc, p_clu, p_cal = self._eval_outputs(xs)
        head = p_clu.argmax(dim=1)
        if self.calibrate.pseudo_clusters == "head":  # Q_c = the cluster head's own partition
            assign, inertia = head, float("nan")
        else:
            labels, inertia = self._pseudo_clusters(enc.fused, salt=epoch, mode=self.calibrate.pseudo_clusters)
            assign = _label_tensor(labels, self.device_)
        if self.calibrate.targets == "hungarian":
            target = losses.matched_hard_targets(assign, p_clu)
        else:  # q_c: the cluster head's mean prediction over Q_c (Section 3.2.1)
            q = torch.zeros(self.n_clusters, self.n_clusters, device=self.device_)
            q.index_add_(0, assign, p_clu)
            counts = torch.bincount(assign, minlength=self.n_clusters).clamp_min(1).unsqueeze(1)
            target = (q / counts)[assign]
        selected, pseudo, k_sel = [], [], []
        for p in p_cal:
            sel, lab, k = losses.screen(p, self.calibrate.screening, self.calibrate.screening_rank)
            if self.calibrate.screening_agreement:  # a view's label teaches the head only where both agree
                sel = sel & (lab == head)
            selected.append(sel)
            pseudo.append(lab)
            k_sel.append(k)
        # Figure 3 / Table 5: the state this epoch starts from (after the previous epoch)
        quality = None
        if epoch == 0:  # a sample's quality: the mean of its views' screening scores
            quality = torch.stack([losses.screening_scores(p, self.calibrate.screening) for p in p_cal]).mean(0)
            quality = quality.cpu().numpy()
        self.trace_.add_calibration(p_clu.cpu().numpy(), quality)
        return {
            "target": target,
            "selected": torch.stack(selected, dim=1).float(),
            "pseudo": torch.stack(pseudo, dim=1),
            "k_selected": k_sel,
            "kmeans_inertia": inertia,
        }

    # ------------------------------------------------------------------ plumbing
    def _build(self, xs: list[torch.Tensor]) -> None:
        dims = [int(x.shape[1]) for x in xs]
        if self.n_clusters > xs[0].shape[0]:
            raise InputError(f"{self.n_clusters} clusters for {xs[0].shape[0]} samples", field="n_clusters",
                             fix="use fewer clusters than samples")
        self.dims_ = dims
        self.net_ = CLIBNet(dims, self.n_clusters, self.model, self.warmup).to(self.device_)
        self._mine_log_ema = [None] * len(dims)
        self._kmeans_centers = self._trace_centers = None
        self.history_ = {}
        self.trace_ = TrainingTrace()
        self.temperature_ = 1.0

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params: list) -> None:
        self._optimiser_step(opt, loss, params, self.warmup.grad_clip)

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """Everything needed to resume or predict: weights, MINE averages, history."""
        return {
            **self._common_state(STATE_FORMAT),
            "mine_log_ema": [None if e is None else float(e) for e in self._mine_log_ema],
            "history": self.saved_history(),
            "trace": self.trace_.to_state(),
            "temperature": self.temperature_,
        }

    def _new_net(self) -> CLIBNet:
        return CLIBNet(self.dims_, self.n_clusters, self.model, self.warmup)

    def _load_extras(self, state: dict[str, Any]) -> None:
        self._mine_log_ema = [None if e is None else torch.tensor(e, device=self.device_)
                              for e in state["mine_log_ema"]]
        self._kmeans_centers = self._trace_centers = None
        self.trace_ = TrainingTrace.from_state(state.get("trace"))
        self.temperature_ = float(state.get("temperature", 1.0))


def screened_values(targets: dict[str, Any]) -> dict[str, float]:
    """The values an epoch of stage 2 records beside its batch means: each view's screened count
    (:meth:`CLIB._epoch_targets`' ``k_selected``) and the K-Means inertia (none in an epoch without
    K-Means: no inertia curve)."""
    values = {screened_key(m): k for m, k in enumerate(targets["k_selected"])}
    if not math.isnan(targets["kmeans_inertia"]):
        values[KMEANS_INERTIA] = targets["kmeans_inertia"]
    return values


def _label_tensor(labels: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Cluster labels as an int64 tensor on ``device`` (a no-op for the torch backend's labels)."""
    if not torch.is_tensor(labels):
        labels = torch.from_numpy(np.asarray(labels))
    return labels.long().to(device)


def batched_kmeans(models: list[CLIB], features: torch.Tensor, salt: int, previous: list
                   ) -> device_kmeans.KMeansResult:
    """The torch backend's K-Means for the seeds ``models`` (one recipe) in one call: ``features``
    (R x N x H, on the training device), each seed's ``previous`` centroids or None.

    Each seed gets what it would get alone: its own generator, seeded from
    its own random state (:meth:`CLIB._kmeans_random_state`), and its own
    Lloyd run (:mod:`mmib.methods.clib.device_kmeans`). Warm-started when
    ``kmeans_warm_start`` and every seed has centroids; k-means++ when none
    has; seeds in lockstep (the stacked warm-up) are always one or the other.
    """
    first = models[0]
    x = features.detach().to(torch.float64)
    warm = [p is not None for p in previous] if first.calibrate.kmeans_warm_start else [False] * len(models)
    if any(warm) and not all(warm):
        raise ValueError("batched K-Means: some seeds have previous centroids and some not")
    if all(warm):
        init = torch.stack([torch.as_tensor(p, dtype=torch.float64, device=x.device) for p in previous])
        return device_kmeans.kmeans(x, init=init)
    gens = [torch.Generator(device=x.device).manual_seed(m._kmeans_random_state(salt)) for m in models]
    return device_kmeans.kmeans(x, first.n_clusters, generator=gens, n_init=first.calibrate.kmeans_n_init)


def trace_warmup_epochs(models: list[CLIB], xs: list[torch.Tensor], epoch: int) -> None:
    """The warm-up trace after ``epoch`` of every seed in ``models`` (one recipe, on the same views):
    each seed's K-Means of its h^f, warm-started from its previous trace centroids.

    The torch backend fits all seeds in one batched call (the stacked warm-up's
    R seeds); the labels go to the host once, for the trace. sklearn fits
    them one after another, as it always has.
    """
    salt = -1_000 - epoch
    fused = [m._eval_encoded(xs).fused for m in models]
    if models[0]._kmeans_backend() == "torch":
        fit = batched_kmeans(models, torch.stack(fused), salt, [m._trace_centers for m in models])
        labels = fit.labels.cpu().numpy()  # the trace is a host record
        for k, model in enumerate(models):
            model._trace_centers = fit.centers[k]
            model.trace_.add_warmup(labels[k])
        return
    for model, f in zip(models, fused):
        labels, model._trace_centers, _ = model._kmeans(f, salt, model._trace_centers)
        model.trace_.add_warmup(labels)
