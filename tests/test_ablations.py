"""Placing experiments in the paper's Tables 2, 3, 5 and the alpha x beta grid (mmib.ablations)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from mmib import ablations
from shipped_params import shipped_params

import yaml

BASE = shipped_params()


def variant(**calibrate) -> dict:
    params = copy.deepcopy(BASE)
    losses = calibrate.pop("losses", {})
    params["calibrate"]["losses"].update(losses)
    params["calibrate"].update(calibrate)
    return params


@pytest.mark.parametrize("switches, expected", [
    ({}, [("Table2", ablations.DEFAULT_ROW), ("Table3", "CLIB-S2(Proposed)")]),  # the shipped recipe: no L_con
    ({"losses": {"con": True}}, [("Table2", "CLIB"), ("Table3", "CLIB-S2(Proposed)")]),  # the paper's four terms
    ({"losses": {"caliH": False, "re": False, "con": False}}, [("Table2", "L_IB + L_cluH")]),
    ({"losses": {"caliH": False, "con": False}}, [("Table2", "L_IB + L_cluH + L_re")]),
    ({"losses": {"re": False, "con": False}}, [("Table2", "L_IB + L_cluH + L_caliH")]),
    ({"losses": {"caliH": False, "re": False, "con": True}}, [("Table2", "L_IB + L_cluH + L_con")]),
    ({"warmup_free": True}, [("Table2", "I. No warm-up for IB")]),
    ({"cal_heads_backprop": True}, [("Table2", "II. Cali heads backprop")]),
    ({"screening": "maxprob"}, [("Table3", "Select by max probability")]),
    ({"screening": "s1"}, [("Table3", "CLIB-S1")]),
    ({"screening": "s3"}, [("Table3", "CLIB-S3")]),
    ({"screening": "s1", "warmup_free": True}, []),                 # two changes at once: no paper row
    ({"losses": {"cluH": False}}, []),                              # every paper row keeps L_cluH
])
def test_switches_place_an_experiment_in_the_papers_rows(switches, expected):
    assert ablations.table_rows(variant(**switches)) == expected


def test_other_methods_are_not_ablation_rows():
    assert ablations.table_rows({**BASE, "method": "msdib"}) == []


def test_setting_ignores_switches_and_data_root_but_not_epochs_or_seeds():
    base = ablations.setting_of(BASE, "mfeat")
    assert ablations.setting_of(variant(screening="s1", warmup_free=True), "mfeat") == base
    assert ablations.setting_of({**BASE, "data_root": "/elsewhere", "datasets": ["x"]}, "mfeat") == base
    assert ablations.setting_of({**BASE, "seeds": [0]}, "mfeat") != base
    assert ablations.setting_of({**BASE, "alpha": 0.3}, "mfeat") != base
    assert ablations.setting_of({**BASE, "alpha": 0.3}, "mfeat", extra=(("alpha",),)) == \
        ablations.setting_of(BASE, "mfeat", extra=(("alpha",),))


def metrics(acc, hard=None):
    out = {"acc": {"mean": acc, "std": 1.0}, "nmi": {"mean": acc - 10, "std": 2.0},
           "ece": {"mean": 100 - acc, "std": 0.5}}
    if hard:
        out["hard_samples"] = {"first_calibration_epoch": {k: {"mean": hard[0], "std": 0.0} for k in ("acc", "nmi", "ece")},
                               "end": {k: {"mean": hard[1], "std": 0.0} for k in ("acc", "nmi", "ece")}}
    return {"caltech_2v": out}


def paper():
    rows = [("CLIB-Table2", "CLIB", "Caltech-2V", "ACC", 68.6), ("CLIB-Table2", "L_IB + L_cluH", "Caltech-2V", "ACC", 57.7),
            ("CLIB-Table3", "CLIB-S1", "Caltech-2V", "ACC", 61.1), ("CLIB-Table5", "At epoch 200", "Caltech-2V", "ACC", 43.1)]
    return pd.DataFrame(rows, columns=("table", "method", "dataset", "metric", "value_percent"))


def test_tables_put_ours_beside_the_papers_rows():
    records = [
        {"name": "full", "params": BASE, "metrics": metrics(50.0, hard=(20.0, 30.0))},
        {"name": "cluH", "params": variant(losses={"caliH": False, "re": False, "con": False}), "metrics": metrics(40.0)},
        {"name": "s1", "params": variant(screening="s1"), "metrics": metrics(45.0)},
        {"name": "other-epochs", "params": {**BASE, "seeds": [0]}, "metrics": metrics(99.0)},  # another setting
    ]
    frame = ablations.ablation_frame(records)
    text = ablations.render_ablations(frame, paper(), {"caltech_2v": "Caltech-2V"})
    assert "| L_IB + L_cluH | cluH | 40.0 ± 1.0 | 30.0 ± 2.0 | 60.0 ± 0.5 | 57.7 | — | — |" in text
    # the shipped recipe (no L_con) sits beside the paper's CLIB row
    assert f"| {ablations.DEFAULT_ROW} | full | 50.0 ± 1.0 | 40.0 ± 2.0 | 50.0 ± 0.5 | 68.6 | — | — |" in text
    assert "| CLIB-S1 | s1 | 45.0 ± 1.0 |" in text and "61.1" in text
    assert "| At the end | full | 30.0 ± 0.0 | 30.0 ± 0.0 | 30.0 ± 0.0 | 43.1 | — | — |" in text
    # rows in the paper's order, and the lone run of another setting is not an ablation table
    assert text.index("| L_IB + L_cluH |") < text.index(f"| {ablations.DEFAULT_ROW} | full |")
    assert "99.0" not in text


def test_no_ablations_yet():
    assert "queue" in ablations.render_ablations(ablations.ablation_frame([]), paper(), {})


def test_alpha_beta_grid_pivots_full_clib_points_of_one_setting():
    records = []
    for a in (0.1, 0.5):
        for b in (0.1, 0.9):
            records.append({"name": f"a{a}b{b}", "params": {**BASE, "alpha": a, "beta": b},
                            "metrics": metrics(10 * a + b)})
    records.append({"name": "ablated", "params": {**variant(screening="s1"), "alpha": 0.1, "beta": 0.1},
                    "metrics": metrics(0.0)})  # not full CLIB: not on the grid
    grids = ablations.alpha_beta_grids(records)
    assert len(grids) == 1
    (dataset, _setting), grid = next(iter(grids.items()))
    acc = grid["acc"]
    assert dataset == "caltech_2v" and list(acc.index) == [0.1, 0.9] and list(acc.columns) == [0.1, 0.5]
    assert acc.loc[0.9, 0.5] == pytest.approx(5.9) and acc.loc[0.1, 0.1] == pytest.approx(1.1)
    assert np.isfinite(grid["ece"].to_numpy()).all()


def test_a_single_point_is_no_grid():
    assert ablations.alpha_beta_grids([{"name": "x", "params": BASE, "metrics": metrics(1.0)}]) == {}


def _apply(overrides: list[str]) -> dict:
    """params.yaml with ``-S key=value`` overrides applied (YAML values, dotted keys)."""
    params = copy.deepcopy(BASE)
    for item in overrides:
        key, value = item.split("=", 1)
        node = params
        *path, leaf = key.split(".")
        for part in path:
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    return params


@pytest.mark.parametrize("sweep, table", [("table2", "Table2"), ("table3", "Table3")])
def test_every_queued_variant_lands_in_its_own_paper_row(sweep, table):
    from mmib import sweeps

    cmds = sweeps.commands(sweep, ["datasets=[caltech_2v]"], prefix="c2-")
    rows = []
    for cmd in cmds:
        assert cmd[:5] == ["dvc", "exp", "run", "--queue", "summarize"] and cmd[6].startswith("c2-")
        overrides = [cmd[i + 1] for i, tok in enumerate(cmd) if tok == "-S"]
        assert overrides[0] == "datasets=[caltech_2v]"
        rows += [row for t, row in ablations.table_rows(_apply(overrides)) if t == table]
    expected = ablations.TABLE2_ORDER if table == "Table2" else tuple(ablations.TABLE3_ROWS.values())
    assert sorted(rows) == sorted(expected)  # each paper row exactly once


def test_grid_covers_alpha_and_beta():
    from mmib import sweeps

    cmds = sweeps.commands("grid", [], values=(0.1, 0.5))
    points = {(_apply([c[i + 1] for i, t in enumerate(c) if t == "-S"])["alpha"],
               _apply([c[i + 1] for i, t in enumerate(c) if t == "-S"])["beta"]) for c in cmds}
    assert points == {(0.1, 0.1), (0.5, 0.1), (0.1, 0.5), (0.5, 0.5)}
    assert len(sweeps.commands("grid", [])) == 81


def test_unknown_sweep():
    from mmib import sweeps

    with pytest.raises(ValueError, match="table2"):
        sweeps.commands("table4", [])


def test_grid_markdown_has_one_row_per_beta():
    grid = pd.DataFrame([[50.0, 55.0], [60.0, np.nan]], index=pd.Index([0.1, 0.9], name="beta"),
                        columns=pd.Index([0.1, 0.5], name="alpha"))
    text = ablations.render_grids({("caltech_2v", "abc"): {"acc": grid}}, {("caltech_2v", "abc"): "5 seeds"})
    assert "| beta \\ alpha | 0.1 | 0.5 |" in text
    assert "| 0.1 | 50.0 | 55.0 |" in text and "| 0.9 | 60.0 | — |" in text
    assert ablations.render_grids({}, {}) == ""
