"""What every estimator shares: scikit-learn's params, device, progress bars, the fitted check,
per-epoch records, the saved state's common fields and loading it back."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Mapping

import numpy as np
import torch
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from mmib.divergence import check_finite, loss_params
from mmib.errors import InputError
from mmib.runtime import resolve_device, seed_everything
from mmib.training_record import EPOCH_SECONDS, TIMING_KEYS, fusion_weight_key, without_timings
from mmib.validation import check_args, check_views

STAGE2_SEED_OFFSET = 1_000_003
"""Stage 2 re-seeds with ``seed + STAGE2_SEED_OFFSET``, so warm-up -> state -> load -> stage 2 equals one ``fit()``."""


def _as_tensors(views: list[np.ndarray], device: torch.device,
                expected_dims: list[int] | None = None) -> list[torch.Tensor]:
    """Validate the views (:func:`mmib.validation.check_views`: and, for a fitted model, their number
    and widths) and move them to the device."""
    return [torch.from_numpy(a).to(device) for a in check_views(views, expected_dims)]


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches over the on-device tensors (no DataLoader).

    The last incomplete batch is dropped (as the papers' code does) unless the
    dataset is smaller than one batch; batch norm needs at least two rows.
    """
    order = torch.randperm(n, generator=gen)
    size = min(batch_size, n)
    n_full = n // size
    return [order[i * size:(i + 1) * size] for i in range(n_full)]


def _adam(params, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for all parameters: ~3x faster steps on the CPU)."""
    return torch.optim.Adam(list(params), lr=lr, weight_decay=weight_decay, fused=True)


def _clip_grad_norm(params: list, max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_(params, max_norm)``, without its pass over the gradients when
    nothing is clipped, on the CPU.

    torch scales every gradient by ``min(1, max_norm / (norm + 1e-6))`` even
    when that is 1 (a product with 1.0 is exact, so the result is the same),
    to spare a GPU a host read. On the CPU the read is free and the skipped
    pass is ~3 ms of a ~40-60 ms step (README "Speed"); the shipped recipe
    clips under 2% of its steps. Same norm, same gradients, bit for bit.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.nn.utils.get_total_norm(grads, 2.0)
    if grads[0].device.type != "cpu" or not bool(max_norm / (total + 1e-6) >= 1.0):
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return total




class EstimatorBase(BaseEstimator):
    """Base of the method estimators, after scikit-learn's conventions.

    ``__init__`` stores its arguments as given (defaults in the signature) and
    nothing else; :meth:`_check_params` validates them when ``fit`` (or
    ``load_state``) starts; ``get_params`` / ``set_params`` come from
    :class:`sklearn.base.BaseEstimator`, so ``sklearn.base.clone`` gives an
    unfitted estimator with equal params. Fitted attributes end in ``_``.
    """

    device: str
    progress: bool
    fit_hint = "call fit(views) first"
    progress_position = 0  # tqdm line, when several seeds train side by side (set by the stages)
    state_format = ""      # the saved state's format tag, ``mmib-<method>-<version>``
    state_name = ""        # the method's name in messages ("a CLIB state")
    state_fix = "re-run the training stages: dvc repro"

    config_type: type | None = None  # MSDIB, OMIB: their params section, the ``config`` argument
    config_section = ""               # ... and its name in params.yaml
    arch_fields: tuple[str, ...] = ()  # ... and its fields that size the network (a saved state must match)

    @classmethod
    def from_params(cls, params: Any, n_clusters: int, seed: int, progress: bool = True) -> "EstimatorBase":
        """The estimator a stage builds from params.yaml (:class:`mmib.config.Params`): the method's own
        section as ``config``, the shared ``device``. Reading params is the stage's job: ``__init__``
        never reads a file."""
        return cls(n_clusters, config=getattr(params, cls.config_section), seed=seed, device=params.device,
                   progress=progress)

    def _check_params(self) -> None:
        """Validate the constructor's arguments (:mod:`mmib.validation`); called when fitting starts.

        This checks the arguments every method has and, for a method with a
        ``config`` section (``config_type``), its type; CLIB checks its own."""
        check_args(type(self).__name__, n_clusters=self.n_clusters, seed=self.seed, device=self.device,
                   progress=self.progress)
        kind = self.config_type
        if kind is not None and not isinstance(self.config, kind):
            raise InputError(f"config must be a {kind.__name__}, got {type(self.config).__name__}", field="config",
                             fix=f"pass {kind.__name__}(...), {kind.__name__}.model_validate(a_dict) or "
                                 f"{kind.__name__}.paper_defaults()")

    def _begin_stage2(self, views: list[np.ndarray]) -> tuple[torch.Generator, list[torch.Tensor]]:
        """How every method's second stage starts: params checked, the device resolved, the stage's seed
        (``seed + STAGE2_SEED_OFFSET``: warm-up -> state -> load -> stage 2 equals one ``fit()``) and the
        views checked against the fitted widths, on the device. Returns the batch-order generator and
        the views."""
        self._check_params()
        self.device_ = resolve_device(self.device)
        gen = seed_everything(self.seed + STAGE2_SEED_OFFSET)
        return gen, _as_tensors(views, self.device_, self.dims_)

    def _stages_done(self) -> list[str]:
        return getattr(self, "stages_done_", [])

    def resolved_device(self) -> torch.device:
        return resolve_device(self.device)

    def _bar_off(self) -> bool | None:
        """tqdm's ``disable``: None turns the bar off when output is not a terminal."""
        return None if self.progress else True

    def _require_net(self):
        if getattr(self, "net_", None) is None:
            raise InputError("the model is not fitted", field="model", fix=self.fit_hint)
        return self.net_

    def _fitted_inputs(self, views: list[np.ndarray]) -> tuple[torch.nn.Module, list[torch.Tensor]]:
        """The fitted network in eval mode and the views checked against the fitted widths."""
        net = self._require_net()
        xs = _as_tensors(views, self.device_, self.dims_)
        net.eval()
        return net, xs

    def predict(self, views: list[np.ndarray]) -> np.ndarray:
        """Hard assignment: the argmax of ``predict_proba``."""
        return self.predict_proba(views).argmax(axis=1)

    def _epoch_extras(self) -> dict[str, float]:
        """Per-epoch values recorded besides the batch means (e.g. fusion weights)."""
        weights = getattr(self, "fusion_weights", None)
        return {fusion_weight_key(m): float(w) for m, w in enumerate(weights())} if weights else {}

    def _epoch_bar(self, n_epochs: int, desc: str) -> tqdm:
        """The progress bar over one stage's epochs (one line per seed when seeds train side by side)."""
        bar = tqdm(range(n_epochs), desc=f"{desc} seed {self.seed}", disable=self._bar_off(), leave=False,
                   position=getattr(self, "progress_position", 0))
        bar.label = f"{desc} seed {self.seed}"  # a disabled tqdm keeps no desc; the plain lines need it
        return bar

    def _batch_sums(self, batches: list[torch.Tensor],
                    train_batch: Callable[[torch.Tensor], Mapping[str, Any]]) -> dict[str, Any]:
        """One epoch's pass in training mode: ``train_batch`` takes one optimiser step on an
        index batch and returns its detached values, summed here per key for :meth:`_record`."""
        self._require_net().train()
        sums: dict[str, Any] = defaultdict(float)
        for idx in batches:
            for k, v in train_batch(idx).items():
                sums[k] += v
        return sums

    def _train_epochs(self, n_epochs: int, desc: str, n_rows: int, batch_size: int, gen: torch.Generator,
                      train_batch: Callable[[torch.Tensor], Mapping[str, Any]], shown: str = "loss",
                      before_epoch: Callable[[int], None] | None = None,
                      epoch_values: Callable[[], Mapping[str, float]] | None = None,
                      after_epoch: Callable[[int], None] | None = None,
                      hist: Mapping[str, list[float]] | None = None) -> dict[str, list[float]]:
        """A stage's epochs, the one training loop of every method: shuffled batches, one pass each,
        per-epoch records (the stage's history), a finiteness check, the progress bar.

        The hooks hold each method's per-epoch work: ``before_epoch(epoch)`` runs before the epoch's
        batches are drawn (CLIB's targets and screening), ``epoch_values()`` gives values recorded
        for the epoch beside the batch means (the screened counts), ``after_epoch(epoch)`` runs after
        the epoch's record (e.g. a snapshot for the figures). ``hist`` holds records made before
        the first epoch (the cold start); ``shown`` is the history key on the progress bar.
        """
        hist = defaultdict(list, {k: list(v) for k, v in (hist or {}).items()})
        bar = self._epoch_bar(n_epochs, desc)
        for epoch in bar:
            t0 = time.perf_counter()
            if before_epoch is not None:
                before_epoch(epoch)
            batches = _batches(n_rows, batch_size, gen)
            sums = self._batch_sums(batches, train_batch)
            self._record(hist, sums, len(batches), t0, epoch_values() if epoch_values is not None else {})
            self._check_finite(hist, epoch, n_epochs, desc)
            if after_epoch is not None:
                after_epoch(epoch)
            self._show_epoch(bar, epoch, hist[shown][-1], hist[EPOCH_SECONDS][-1])
        return dict(hist)

    def _check_finite(self, hist: Mapping[str, list[float]], epoch: int, n_epochs: int, stage: str) -> None:
        """Stop a diverged training at this epoch's end (:func:`mmib.divergence.check_finite`)."""
        check_finite({k: v[-1] for k, v in hist.items() if v and k not in TIMING_KEYS}, epoch + 1, n_epochs,
                     stage, loss_params(self, stage), self._require_net().parameters())

    def _show_epoch(self, bar: tqdm, epoch: int, loss: float, seconds: float) -> None:
        """The epoch's loss on the progress bar; where there is no terminal (DVC stages, CI logs)
        and progress is wanted, one plain line every tenth of the stage and at its last epoch."""
        bar.set_postfix(loss=f"{loss:.3f}")
        every = max(1, bar.total // 10)
        if self.progress and bar.disable and ((epoch + 1) % every == 0 or epoch + 1 == bar.total):
            print(f"{bar.label}: epoch {epoch + 1}/{bar.total} loss {loss:.4f} ({seconds:.1f} s)", flush=True)

    @staticmethod
    def _optimiser_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params: list, grad_clip: float) -> None:
        """Backward, gradient-norm clip (``grad_clip`` > 0; 0 = off) and one optimiser step."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            _clip_grad_norm(params, grad_clip)
        opt.step()

    def _common_state(self, state_format: str) -> dict[str, Any]:
        """The fields every saved state has; each method adds its own."""
        net = self._require_net()
        return {
            "format": state_format,
            "n_clusters": int(self.n_clusters),
            "dims": list(self.dims_),
            "seed": int(self.seed),
            "stages_done": list(self.stages_done_),
            "net": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        }

    def load_state(self, state: dict[str, Any]):
        """Restore a saved :meth:`state` (its format checked, then the method's own checks and fields)."""
        if state.get("format") != self.state_format:
            raise InputError(f"not {self.state_name} state (format {state.get('format')!r})", field="format",
                             fix=self.state_fix)
        self._check_params()
        self._check_state(state)
        self.device_ = resolve_device(self.device)
        self.n_clusters = int(state["n_clusters"])
        self.dims_ = list(state["dims"])
        self.net_ = self._new_net()
        self.net_.load_state_dict(state["net"])
        self.net_.to(self.device_)
        self.history_ = {stage: {k: list(v) for k, v in hist.items()} for stage, hist in state["history"].items()}
        self.stages_done_ = list(state["stages_done"])
        self._load_extras(state)
        return self

    def _check_state(self, state: dict[str, Any]) -> None:
        """Refuse a state this estimator's params cannot hold: for a method with a ``config`` section,
        a saved network whose ``arch_fields`` (its sizes) differ from this config's."""
        saved = state.get("config") or {}
        diff = [f for f in self.arch_fields if saved.get(f) != getattr(self.config, f)]
        if diff:
            raise InputError(f"the state's network differs from this config in {diff}: "
                             f"{ {f: saved.get(f) for f in diff} } vs { {f: getattr(self.config, f) for f in diff} }",
                             field=f"{self.config_section}.{diff[0]}",
                             fix=f"use the config the state was trained with, or {self.state_fix}")

    def _new_net(self) -> torch.nn.Module:
        """An untrained network for ``dims_`` and ``n_clusters`` (on the CPU)."""
        raise NotImplementedError

    def _load_extras(self, state: dict[str, Any]) -> None:
        """The method's own fields of a saved state; none by default."""

    def saved_history(self) -> dict[str, dict[str, list[float]]]:
        """``history_`` as a saved state keeps it: without the wall-clock timings (:data:`mmib.training_record.TIMING_KEYS`).

        Timings differ between identical runs; in a state file they would give
        DVC a new hash for the same model and re-run every stage after it.
        They stay in ``history_`` for MLflow and the curves CSV.
        """
        return {stage: without_timings(hist) for stage, hist in self.history_.items()}

    def _record(self, hist: dict, sums: dict, n_batches: int, t0: float,
                values: Mapping[str, float] | None = None) -> None:
        """Append per-epoch means of the batch values (one device sync per epoch), then the epoch's
        own ``values`` and the method's extras (e.g. fusion weights), then the epoch's seconds."""
        for k, v in sums.items():
            hist[k].append(float(v) / max(n_batches, 1))
        for k, v in {**(values or {}), **self._epoch_extras()}.items():
            hist[k].append(float(v))
        hist[EPOCH_SECONDS].append(time.perf_counter() - t0)


class WeightedFusionEstimator(EstimatorBase):
    """The unsupervised estimators, whose network is :class:`mmib.networks.FusedEncoders` (CLIB, MSDIB)."""

    def fit(self, views: list[np.ndarray], y: Any = None):
        """Both stages (``fit_warmup``, then ``fit_calibration``). ``y`` is accepted for
        scikit-learn compatibility and ignored."""
        return self.fit_warmup(views).fit_calibration(views)

    def fit_predict(self, views: list[np.ndarray], y: Any = None) -> np.ndarray:
        return self.fit(views).predict(views)

    def transform(self, views: list[np.ndarray]) -> np.ndarray:
        """Fused features (``h^f`` of CLIB, ``h^s`` of MSDIB) on the posterior means."""
        net, xs = self._fitted_inputs(views)
        with torch.no_grad():
            return net.encode(xs, sample=False).fused.cpu().numpy()

    def fusion_weights(self) -> np.ndarray:
        """The fusion weight of each view (softmax of the learnt logits)."""
        return self._require_net().fusion.weights().detach().cpu().numpy()
