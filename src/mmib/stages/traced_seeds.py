"""The training traces of the seeds (CLIB) scored by evaluate: Figure 3, Table 5 and the screened counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmib import plots
from mmib.atomic_io import write_csv
from mmib.config import Params


class TracedSeeds:
    """Per-seed scores of the training traces (CLIB): Figure 3, Table 5 and the screened counts."""

    def __init__(self) -> None:
        self.convergence: list[pd.DataFrame] = []
        self.screened: list[pd.DataFrame] = []
        self.hard: list[dict[str, Any]] = []

    def add(self, seed: int, state: dict, proba: np.ndarray, labels: np.ndarray | None, params: Params) -> None:
        """Without labels: the losses of Figure 3 and the screened counts (no ACC/NMI, no Table 5)."""
        from mmib import trace_metrics
        from mmib.methods.trace import TrainingTrace

        trace = TrainingTrace.from_state(state.get("trace"))
        if not trace.calibrate:  # a method without a trace (MSDIB, OMIB)
            return
        self.convergence.append(trace_metrics.convergence_frame(seed, state["history"], trace, labels))
        self.screened.append(trace_metrics.screened_frame(seed, state["history"]["calibrate"]))
        if labels is not None:
            self.hard.append(trace_metrics.hard_sample_study(trace, proba, labels, params.evaluate.hard_fraction,
                                                             params.evaluate.ece_bins))

    def hard_summary(self, fraction: float) -> dict[str, Any]:
        """Table 5 over the seeds: mean +- std at the first calibration epoch and at the end."""
        from mmib import metrics

        return {"fraction": fraction, "n_samples": self.hard[0]["n_samples"],
                **{when: metrics.mean_std([h[when] for h in self.hard])
                   for when in ("first_calibration_epoch", "end")}}

    def write(self, dataset: str, out_dir: Path, n_samples: int) -> list[Path]:
        """CSV tables (dvc plots) and PNG figures (dvc plots, MLflow) of the traced seeds."""
        if not self.convergence:  # MSDIB / OMIB keep no trace: header-only tables, as dvc.yaml declares them
            write_csv(out_dir / "convergence.csv", pd.DataFrame(columns=CONVERGENCE_COLUMNS))
            write_csv(out_dir / "screened.csv", pd.DataFrame(columns=("epoch", "view", "n_selected", "series")))
            return []
        convergence = pd.concat(self.convergence, ignore_index=True)
        screened = pd.concat(self.screened, ignore_index=True)
        write_csv(out_dir / "convergence.csv", _convergence_long(convergence))
        mean_screened = screened.groupby(["epoch", "view"], as_index=False)["n_selected"].mean()
        write_csv(out_dir / "screened.csv", mean_screened.assign(series="view" + mean_screened["view"].astype(str)))
        figures = [plots.convergence_plot(convergence, out_dir / "plots" / "convergence.png",
                                          title=f"{dataset}: convergence over both stages")]
        if not screened.empty:
            figures.append(plots.screened_plot(screened, n_samples, out_dir / "plots" / "screened.png",
                                               title=f"{dataset}: screened samples per view (mean over seeds)"))
        return figures


CONVERGENCE_COLUMNS = ("seed", "epoch", "stage", "quantity", "value", "series")


def _convergence_long(frame: pd.DataFrame) -> pd.DataFrame:
    """Figure 3 in long form for `dvc plots` (one panel per quantity, one line per seed)."""
    long = frame.melt(id_vars=["seed", "epoch", "stage"], value_vars=["loss", "acc", "nmi"],
                      var_name="quantity", value_name="value")
    long["quantity"] = long["quantity"].map({"loss": "total loss", "acc": "ACC (%)", "nmi": "NMI (%)"})
    long["series"] = "seed " + long["seed"].astype(str)
    return long.dropna(subset=["value"])
