"""What `dvc exp show` shows (issue 13 item 8): no catalog params, headline metrics only, `make show`
within 120 columns."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fresh_clone import REPO, fresh_clone, run

WIDTH = 120


def _dvc_yaml() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _width(text: str) -> int:
    return max((len(line.rstrip()) for line in text.splitlines()), default=0)


def test_no_stage_tracks_the_catalog_as_params_and_preprocess_depends_on_its_file():
    stages = _dvc_yaml()
    for name, stage in stages.items():
        body = stage.get("do", stage)
        assert not any(str(p).split(".")[0] == "catalog" for p in body.get("params", [])), name
    assert "data/catalog.yaml" in stages["preprocess"]["do"]["deps"]


def test_only_the_headline_metrics_file_is_a_dvc_metrics_file():
    summarize = _dvc_yaml()["summarize"]
    assert [next(iter(m)) for m in summarize["metrics"]] == ["metrics/metrics.json"]
    outs = {next(iter(o)) if isinstance(o, dict) else o: o for o in summarize["outs"]}
    assert outs["metrics/details.json"]["metrics/details.json"]["cache"] is False  # committable (item 9)
    from mmib import experiments
    from mmib.stages import paths
    assert Path(experiments.DETAILS_FILE) == paths.DETAILS_PATH


def _headline(acc: float) -> dict:
    return {k: {"mean": acc - i, "std": 0.123456} for i, k in enumerate(("acc", "nmi", "ari", "ece",
                                                                          "mean_confidence", "seed_agreement"))}


@pytest.fixture(scope="module")
def shown_clone(tmp_path_factory) -> tuple[Path, dict]:
    """A fresh clone with two committed runs (alpha 0.5, then 0.3) with metrics for three datasets
    (no training): `dvc exp show -n 2` lists both, so every metric varies between the rows."""
    work, env = fresh_clone(tmp_path_factory.mktemp("view") / "repo")
    (work / "metrics").mkdir(exist_ok=True)
    for i, alpha in enumerate(("0.5", "0.3")):
        params = (work / "params.yaml").read_text()
        (work / "params.yaml").write_text(re.sub(r"(?m)^alpha: .*$", f"alpha: {alpha}", params))
        (work / "metrics" / "metrics.json").write_text(json.dumps(
            {ds: _headline(90.0 - i) for ds in ("tiny", "caltech_2v", "handwritten")}))
        run(["git", "add", "-A"], work, env)
        run(["git", "commit", "-qm", f"run alpha {alpha}"], work, env)
    return work, env


def test_dvc_collects_no_catalog_params(shown_clone):
    work, env = shown_clone
    show = json.loads(run(["dvc", "exp", "show", "--json"], work, env))
    params = show[0]["data"]["params"]["params.yaml"]["data"]
    assert "catalog" not in params and "alpha" in params
    assert "data/catalog.yaml" not in show[0]["data"]["params"]  # a dependency, not a params file


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_show_fits_120_columns(shown_clone):
    work, env = shown_clone
    wide = {**env, "COLUMNS": "1000"}  # rich would otherwise fit (and cut) the table to this terminal
    full = run(["dvc", "exp", "show", "--no-pager", "-n", "2"], work, wide)
    make = ["make", "--no-print-directory", "show", "SHOW_ARGS=-n 2"]
    one = run([*make, "SHOW_DATASETS=tiny"], work, wide)
    assert _width(one) <= WIDTH, one
    assert "tiny.acc.mean" in one and "tiny.ece.mean" in one and "caltech_2v" not in one
    assert "tiny.seed_agreement.mean" in one  # label-free: what unlabelled data is compared by
    assert "alpha" in one and "0.3" in one  # the param that differs between the rows
    assert "…" not in one, one  # nothing cut
    for hidden in ("src/mmib", "std", "ari", "mean_confidence", "beta"):  # hashes, secondary and same columns
        assert hidden not in one, (hidden, one)
    every = run(make, work, wide)
    assert "handwritten.acc.mean" in every
    print(f"dvc exp show: {_width(full)} columns; make show: {_width(every)} (3 datasets), "
          f"{_width(one)} (SHOW_DATASETS=tiny)")
    assert _width(every) < _width(full)


def _uncached_outputs(item: str) -> list[str]:
    """Every `cache: false` output (metrics, plots, outs) of dvc.yaml, for dataset ``item``."""
    paths = []
    for stage in _dvc_yaml().values():
        body = stage.get("do", stage)
        for section in ("outs", "metrics", "plots"):
            for entry in body.get(section, []):
                if isinstance(entry, dict):
                    path, opts = next(iter(entry.items()))
                    if (opts or {}).get("cache") is False:
                        paths.append(path.replace("${item}", item))
    return paths


def test_the_baseline_run_s_small_outputs_can_be_committed():
    """Issue 13 item 9: `git add dvc.lock metrics` after `make repro` records the baseline, so no
    cache: false output (metrics, curves, tables, figures) may be git-ignored."""
    paths = _uncached_outputs("mfeat")
    assert {"metrics/metrics.json", "metrics/details.json", "metrics/mfeat/warmup_curves.csv",
            "metrics/mfeat/plots"} <= set(paths)
    probe = [p + "/figure.png" if p.endswith("/plots") else p for p in paths]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *probe], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    assert not ignored, f"git-ignored, so the baseline cannot be committed: {ignored}"
    assert "dvc.lock" not in (REPO / ".gitignore").read_text()
