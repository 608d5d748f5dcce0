"""The ``report`` stage: ours next to the papers' numbers (data/reference/paper_tables.csv)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from mmib import report as rp
from mmib.config import parse_params
from shipped_params import shipped_params

REPO = Path(__file__).resolve().parents[1]
PAPER_CSV = REPO / "data" / "reference" / "paper_tables.csv"
DASH = rp.DASH


def paper(table: str, method: str, dataset: str, metric: str) -> float | None:
    """The papers' value read straight from the CSV (independent of mmib.report)."""
    with PAPER_CSV.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if (row["table"], row["method"], row["dataset"], row["metric"]) == (table, method, dataset, metric):
                return float(row["value_percent"]) if row["value_percent"] else None
    raise KeyError((table, method, dataset, metric))


def _stats(acc: float, nmi: float, ari: float, **extra: float) -> dict:
    out = {"acc": {"mean": acc, "std": 1.25}, "nmi": {"mean": nmi, "std": 0.5}, "ari": {"mean": ari, "std": 0.75}}
    out.update({k: {"mean": v, "std": 0.25} for k, v in extra.items()})
    return out


def _evaluation() -> dict:
    return {"n_seeds": 3, **_stats(55.0, 44.0, 33.0, ece=12.0, mean_confidence=60.0),
            "lowest_loss_seed": {"seed": 2, "final_loss": 1.0, "acc": 57.5, "nmi": 45.5, "ari": 35.5,
                                 "ece": 11.5, "mean_confidence": 61.0},
            "per_seed": {}}


def _baselines() -> dict:
    methods = {"KM": _stats(40.0, 30.0, 20.0), "KM_mean_view": _stats(38.0, 28.0, 18.0),
               "Ncuts": _stats(41.0, 31.0, 21.0), "Ncuts_mean_view": _stats(39.0, 29.0, 19.0),
               "ALLKM": _stats(42.0, 32.0, 22.0), "ALLNcuts": _stats(43.0, 33.0, 23.0)}
    return {"n_seeds": 3, "methods": methods}


@pytest.fixture()
def built(tmp_path, monkeypatch) -> tuple[str, pd.DataFrame]:
    """Fake evaluate / baselines outputs for caltech_2v (in the papers) and mfeat (not), then the stage."""
    from mmib.stages import report as report_stage

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMIB_TRACKING", "0")
    for ds in ("caltech_2v", "mfeat"):
        for stage, obj in (("evaluate", _evaluation()), ("baselines", _baselines())):
            path = tmp_path / "metrics" / stage / f"{ds}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(obj))
    bench = tmp_path / "benchmarks" / "quality.jsonl"  # the paper's reading on caltech_2v, MSDIB on mfeat
    bench.parent.mkdir()
    bench.write_text("".join(json.dumps({"dataset": ds, "recipe": recipe, "seed": s, "acc": acc,
                                         "nmi": 30.0, "ari": 20.0, "ece": 10.0 + s}) + "\n"
                             for ds, recipe, s, acc in (("caltech_2v", "paper", 0, 40.0),
                                                        ("caltech_2v", "paper", 1, 44.0),
                                                        ("caltech_2v", "default", 0, 99.0),
                                                        ("mfeat", "msdib", 0, 60.0), ("mfeat", "msdib", 1, 63.0))))
    raw = shipped_params()
    raw.update(datasets=["caltech_2v", "mfeat"], seeds=[0, 1, 2])
    raw["report"]["benchmark"] = "benchmarks/quality.jsonl"
    report_stage.report(parse_params(raw), paper_path=PAPER_CSV)
    md = (tmp_path / "metrics" / "report.md").read_text()
    frame = pd.read_csv(tmp_path / "metrics" / "report.csv")
    return md, frame


def _section(md: str, dataset: str) -> str:
    return md.split(f"## {dataset} ")[1].split("\n## ")[0]


def _row(section: str, label_start: str) -> list[str]:
    for line in section.splitlines():
        if line.startswith(f"| {label_start}"):
            return [c.strip() for c in line.strip().strip("|").split("|")]
    raise AssertionError(f"no row {label_start!r} in\n{section}")


# columns: method, ACC ours, ACC paper, NMI ours, NMI paper, ECE ours, ECE paper, ARI ours
def test_markdown_caltech_2v_against_the_paper_csv(built):
    md, _ = built
    sec = _section(md, "caltech_2v")
    assert "(papers: Caltech-2V)" in sec
    clib = _row(sec, "CLIB (ours")
    assert clib[1:] == ["55.0 ± 1.2", "68.6", "44.0 ± 0.5", "60.5", "12.0 ± 0.2", "16.0", "33.0 ± 0.8"]
    assert clib[2] == f"{paper('CLIB-Table1', 'CLIB (Ours)', 'Caltech-2V', 'ACC'):.1f}"
    lowest = _row(sec, "CLIB (lowest-loss seed 2)")
    assert lowest[1:] == ["57.5", DASH, "45.5", DASH, "11.5", DASH, "35.5"]
    for key, method in (("KM (best", "KM"), ("Ncuts (best", "Ncuts"), ("ALLKM", "ALLKM"), ("ALLNcuts", "ALLNcuts")):
        row = _row(sec, key)
        assert row[2] == f"{paper('CLIB-Table1', method, 'Caltech-2V', 'ACC'):.1f}", key
        assert row[4] == f"{paper('CLIB-Table1', method, 'Caltech-2V', 'NMI'):.1f}", key
        assert row[5] == DASH and row[6] == DASH  # hard clusterings: no ECE, ours nor the paper's
    assert _row(sec, "KM (best")[1] == "40.0 ± 1.2"
    assert _row(sec, "KM (mean over views)")[1:3] == ["38.0 ± 1.2", DASH]
    msdib = _row(sec, "MSDIB")
    assert msdib[1] == DASH and msdib[2] == f"{paper('MSDIB-Table1', 'MSDIB', 'Caltech-2V', 'ACC'):.1f}" == "67.8"
    assert "CLIB-Table1" in sec and "MSDIB-Table1" in sec


def test_markdown_protocol_line(built):
    md, _ = built
    assert ("Ours: mean ± std over 3 seeds of the final model, fixed hyper-parameters, no label-based "
            "selection; papers: best of 20 runs, alpha/beta tuned with labels") in md


def test_dataset_absent_from_the_papers_gets_dashes(built):
    md, _ = built
    sec = _section(md, "mfeat")
    assert "(not in the papers)" in sec
    for label in ("KM (best", "Ncuts (best", "ALLKM", "ALLNcuts", "CLIB (ours", "MSDIB"):
        row = _row(sec, label)
        assert row[2] == row[4] == row[6] == DASH, label
    assert _row(sec, "CLIB (ours")[1] == "55.0 ± 1.2"


def test_csv_long_format(built):
    _, frame = built
    assert list(frame.columns) == list(rp.REPORT_COLUMNS)
    assert set(frame["source"]) == {"ours", "paper"}

    def value(ds, method, source, metric):
        hit = frame[(frame.dataset == ds) & (frame.method == method) & (frame.source == source)
                    & (frame.metric == metric)]
        assert len(hit) == 1, (ds, method, source, metric)
        return hit.iloc[0]

    row = value("caltech_2v", "CLIB", "paper", "ACC")
    assert row.value == 68.6 and pd.isna(row["std"]) and row.paper_table == "CLIB-Table1"
    assert value("caltech_2v", "CLIB", "paper", "ECE").value == 16.0
    ours = value("caltech_2v", "CLIB", "ours", "ACC")
    assert (ours.value, ours["std"]) == (55.0, 1.25)
    assert value("caltech_2v", "KM", "paper", "NMI").value == paper("CLIB-Table1", "KM", "Caltech-2V", "NMI")
    assert value("caltech_2v", "MSDIB", "paper", "NMI").value == 55.2
    assert value("caltech_2v", "ALLNcuts", "ours", "ARI").value == 23.0
    assert value("mfeat", "CLIB_lowest_loss_seed", "ours", "ECE").value == 11.5
    assert frame[(frame.dataset == "mfeat") & (frame.source == "paper")].empty
    # empty paper cells (baselines' ECE) are left out, not written as 0
    assert frame[(frame.method == "KM") & (frame.source == "paper") & (frame.metric == "ECE")].empty


def test_paper_values_fall_back_to_msdib_table():
    """NUS-Wide is only in MSDIB's Table 1, where ALLKM is called AmKM."""
    table = rp.load_paper_table(PAPER_CSV)
    values, source = rp.paper_values(table, "NUS-Wide", "ALLKM")
    assert source == "MSDIB-Table1"
    assert values == {"ACC": paper("MSDIB-Table1", "AmKM", "NUS-Wide", "ACC"),
                      "NMI": paper("MSDIB-Table1", "AmKM", "NUS-Wide", "NMI")}
    assert rp.paper_values(table, "NUS-Wide", "CLIB") == ({}, None)
    assert rp.paper_values(table, None, "KM") == ({}, None)
    values, source = rp.paper_values(table, "Caltech-2V", "KM")
    assert source == "CLIB-Table1" and values == {"ACC": 41.6, "NMI": 30.5}


def test_paper_names_cover_the_csv_datasets():
    """Every dataset of the papers' tables has a name mapping in params.yaml, spelled as in the CSV."""
    names = shipped_params()["report"]["paper_names"]
    in_csv = set(pd.read_csv(PAPER_CSV)["dataset"])
    assert set(names.values()) == in_csv
    raw = shipped_params()
    assert set(names) <= set(raw["catalog"])


def test_the_papers_reading_row_comes_from_the_quality_benchmark(built):
    md, _frame = built
    row = _row(_section(md, "caltech_2v"), "CLIB, the paper's literal reading")
    # mean ± std (population) of the two "paper" records; the "default" record is not mixed in
    assert row[1] == "42.0 ± 2.0" and row[3] == "30.0 ± 0.0" and row[5] == "10.5 ± 0.5"
    assert "99.0" not in md
    assert _row(_section(md, "mfeat"), "CLIB, the paper's literal reading")[1] == DASH


def test_the_msdib_row_comes_from_the_benchmark_when_the_run_did_not_train_msdib(built):
    md, _frame = built
    assert _row(_section(md, "mfeat"), "MSDIB")[1] == "61.5 ± 1.5"  # the two "msdib" records
    assert _row(_section(md, "caltech_2v"), "MSDIB")[1] == DASH  # no MSDIB record for it


def test_a_run_of_msdib_keeps_its_own_row():
    ours = [{"dataset": "mfeat", "method": "MSDIB", "source": "ours", "metric": "ACC", "value": 70.0}]
    records = [{"dataset": "mfeat", "recipe": "msdib", "seed": 0, "acc": 50.0},
               {"dataset": "mfeat", "recipe": "paper", "seed": 0, "acc": 40.0}]
    added = rp.benchmark_fill("mfeat", ours, records)
    assert [(r["method"], r["value"]) for r in added] == [("CLIB_paper_reading", 40.0)]
    added = rp.benchmark_fill("mfeat", [], records)
    assert [(r["method"], r["value"]) for r in added] == [("CLIB_paper_reading", 40.0), ("MSDIB", 50.0)]


def test_a_missing_benchmark_file_names_the_param(tmp_path):
    from mmib.errors import InputError

    with pytest.raises(InputError, match="report.benchmark"):
        rp.load_benchmark(tmp_path / "nope.jsonl")


def test_missing_input_is_an_input_error(tmp_path, monkeypatch):
    from mmib.stages import report as report_stage
    from mmib.errors import InputError

    monkeypatch.chdir(tmp_path)
    raw = shipped_params()
    raw.update(datasets=["caltech_2v"])
    with pytest.raises(InputError, match="evaluate output missing"):
        report_stage.report(parse_params(raw), paper_path=PAPER_CSV)
