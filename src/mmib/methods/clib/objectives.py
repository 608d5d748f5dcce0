"""CLIB's objectives as weighted terms (:class:`mmib.methods.objective.Objective`): which terms,
with which weights and switches, from the params. The terms themselves are the pure functions of
:mod:`mmib.methods.clib.losses`; the per-seed estimator and the stacked warm-up both combine them here.
"""

from __future__ import annotations

from mmib.methods.clib.config import CalibrateParams, WarmupParams
from mmib.methods.objective import Objective, Term

CAL_TERMS = ("caliH", "re", "cluH", "con")
"""The terms of L_Cal (Eq. 6) that Table 2 switches, in the order they are summed."""

PRESERVATION_TERM = {"mine": "mine", "infonce": "preservation", "none": "preservation"}
"""The name the preservation term I(H^m; H^f) is reported under, per estimator."""


def ib_objective(warmup: WarmupParams, beta: float) -> Objective:
    """L_IB (Eq. 5): ``kl_weight * KL + NT-Xent - beta * I(H^m; H^f) + reconstruction_weight * recon``.

    The preservation term (``warmup.preservation``: ``mine`` the paper, ``infonce``, or ``none``) is
    a :class:`~mmib.methods.objective.Bound`; the reconstruction term is on when its weight is > 0
    (the network then has decoders). Reported as ``ib``.
    """
    pres = warmup.preservation
    return Objective("ib", (
        Term("kl", warmup.kl_weight),
        Term("nce"),
        Term(PRESERVATION_TERM[pres], beta, enabled=pres != "none"),
        Term("recon", warmup.reconstruction_weight, enabled=warmup.reconstruction_weight > 0),
    ))


def calibration_objective(calibrate: CalibrateParams) -> Objective:
    """L_Cal (Eq. 6): the Table 2 terms with their switches and weights, then the balance term
    (the cluster head's batch-mean entropy; on when ``balance_weight`` > 0). Reported as ``cal``."""
    switches, weights = calibrate.losses, calibrate.weights
    terms = tuple(Term(name, getattr(weights, name), getattr(switches, name)) for name in CAL_TERMS)
    return Objective("cal", (*terms, Term("balance", calibrate.balance_weight, calibrate.balance_weight > 0)))


def stage2_objective(alpha: float, keep_ib: bool) -> Objective:
    """Eq. 2: ``L_IB + alpha * L_Cal``; with ``keep_ib`` false L_IB is still measured, at weight 0."""
    return Objective("loss", (Term("ib", 1.0 if keep_ib else 0.0), Term("cal", alpha)))
