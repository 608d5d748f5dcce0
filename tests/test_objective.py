"""The one loss-combination mechanism (:mod:`mmib.methods.objective`) and each method's objectives
built with it, against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from mmib.config import load_params
from mmib.methods.clib.objectives import calibration_objective, ib_objective, stage2_objective
from mmib.methods.msdib.losses import eq1_objective
from mmib.methods.objective import Bound, Objective, Surrogate, Term
from mmib.methods.omib.losses import MAIN_OBJECTIVE

t = torch.tensor


def _floats(parts: dict) -> dict:
    return {k: float(v) for k, v in parts.items()}


def test_weighted_sum_in_order_with_switches():
    obj = Objective("total", (Term("a", 2.0), Term("b", 0.5, enabled=False), Term("c", -1.0)))
    loss, parts = obj.combine({"a": t(3.0), "b": t(100.0), "c": t(4.0)})
    assert float(loss) == 2.0 * 3.0 - 4.0  # b is off
    assert _floats(parts) == {"a": 3.0, "c": 4.0, "total": 2.0}
    assert list(parts) == ["a", "c", "total"] and obj.enabled == ("a", "c")


def test_a_switched_off_term_is_never_computed():
    def boom():
        raise AssertionError("computed a term that is off")

    loss, parts = Objective("x", (Term("a"), Term("b", enabled=False))).combine({"a": lambda: t(1.5), "b": boom})
    assert float(loss) == 1.5 and _floats(parts) == {"a": 1.5, "x": 1.5}


def test_no_term_on_gives_a_zero_loss():
    loss, parts = Objective("x", (Term("a", enabled=False),)).combine({})
    assert float(loss) == 0.0 and _floats(parts) == {"x": 0.0}


def test_a_bound_trains_its_surrogate_and_reports_its_estimate():
    """loss = 1 * 2 + 0.25 * 4 = 3 (the surrogate); reported = 2 - 0.25 * 8 = 0 (minus the estimate)."""
    w = torch.tensor(1.0, requires_grad=True)
    loss, parts = Objective("ib", (Term("nce"), Term("mine", 0.25))).combine(
        {"nce": t(2.0), "mine": Bound(4.0 * w, t(8.0))})
    assert float(loss.detach()) == 3.0 and _floats(parts) == {"nce": 2.0, "mine": 8.0, "ib": 0.0}
    loss.backward()
    assert float(w.grad) == 1.0  # d(0.25 * 4w)/dw
    assert all(not v.requires_grad for v in parts.values())


def test_term_names_must_be_distinct():
    with pytest.raises(ValueError, match="distinct"):
        Objective("x", (Term("a"), Term("a")))
    with pytest.raises(ValueError, match="distinct"):
        Objective("a", (Term("a"),))


def test_clib_ib_objective_eq5():
    """Eq. 5 assembled: loss = 0.5*2 + 3 + 0.25*4 + 2*0.5 = 6; reported ib uses the estimate: 1 + 3 - 0.25*8 + 1 = 3."""
    warmup = load_params().warmup.model_copy(update={"kl_weight": 0.5, "preservation": "mine",
                                                      "reconstruction_weight": 2.0})
    loss, parts = ib_objective(warmup, beta=0.25).combine(
        {"kl": t(2.0), "nce": t(3.0), "mine": Bound(t(4.0), t(8.0)), "recon": t(0.5)})
    assert float(loss) == 6.0 and _floats(parts) == {"kl": 2.0, "nce": 3.0, "mine": 8.0, "recon": 0.5, "ib": 3.0}
    off = warmup.model_copy(update={"preservation": "none", "reconstruction_weight": 0.0})
    loss, parts = ib_objective(off, beta=0.25).combine({"kl": t(2.0), "nce": t(3.0)})
    assert float(loss) == 4.0 and set(parts) == {"kl", "nce", "ib"}
    infonce = warmup.model_copy(update={"preservation": "infonce"})
    assert "preservation" in ib_objective(infonce, 0.5).enabled


def test_clib_calibration_objective_follows_the_table2_switches_and_weights():
    """L_Cal = 2 * caliH + 1 * re + 1 * cluH (+ 3 * balance): con off as shipped."""
    cal = load_params().calibrate.model_copy(update={"balance_weight": 3.0})
    values = {"caliH": t(1.0), "re": t(-0.5), "cluH": t(2.0), "con": t(9.0), "balance": t(-0.25)}
    loss, parts = calibration_objective(cal).combine(values)
    assert float(loss) == 2.0 - 0.5 + 2.0 - 0.75
    assert list(parts) == ["caliH", "re", "cluH", "balance", "cal"]
    no_balance = cal.model_copy(update={"balance_weight": 0.0})
    assert calibration_objective(no_balance).enabled == ("caliH", "re", "cluH")


def test_clib_stage2_objective_eq2():
    loss, parts = stage2_objective(0.5, keep_ib=True).combine({"ib": t(2.0), "cal": t(4.0)})
    assert float(loss) == 4.0 and _floats(parts) == {"ib": 2.0, "cal": 4.0, "loss": 4.0}
    loss, parts = stage2_objective(0.5, keep_ib=False).combine({"ib": t(2.0), "cal": t(4.0)})
    assert float(loss) == 2.0 and float(parts["ib"]) == 2.0  # measured, weight 0


def test_msdib_eq1_signs():
    # Eq. 1: L = L_DDC - alpha L_IP + beta L_IC = 1 - .3 * 2 + .7 * 5 = 3.9
    loss, parts = eq1_objective(0.3, 0.7).combine({"ddc": t(1.0), "l_ip": t(2.0), "l_ic": t(5.0)})
    assert float(loss) == pytest.approx(3.9) and float(parts["total"]) == pytest.approx(3.9)


def test_omib_main_objective():
    loss, parts = MAIN_OBJECTIVE.combine({"omf": t(1.25), "ce_dec": t(0.5)})
    assert float(loss) == 1.75 and _floats(parts) == {"omf": 1.25, "ce_dec": 0.5, "total": 1.75}


def test_a_surrogate_trains_one_tensor_and_reports_another():
    """Eq. 2 with L_IB trained through MINE's surrogate (5) but reported by its estimate (2): loss 5 + 0.5*4, reported 2 + 0.5*4."""
    loss, parts = stage2_objective(0.5, keep_ib=True).combine({"ib": Surrogate(t(5.0), t(2.0)), "cal": t(4.0)})
    assert float(loss) == 7.0 and _floats(parts) == {"ib": 2.0, "cal": 4.0, "loss": 4.0}
