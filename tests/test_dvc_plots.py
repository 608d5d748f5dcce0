"""`dvc plots show` (issue 13 item 10): Vega inline (no CDN), a panel per loss term with a line per
seed, a reliability diagram on 0-100 with its diagonal, t-SNE panels in order with a class legend,
each figure once. The rendering check runs the page's own libraries under node when it is there."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fresh_clone import REPO, fresh_clone, run
from mmib import offline_plots
from mmib.stages.train import CURVE_COLUMNS, _curves_frame

PLOTS = REPO / ".dvc" / "plots"
SCRIPT = re.compile(r'<script data-library="([^@"]+)@([^"]+)">\n(.*?)\n    </script>', re.S)


def _inline_libraries() -> dict[str, tuple[str, str]]:
    html = (PLOTS / "offline.html").read_text()
    return {name: (version, js) for name, version, js in SCRIPT.findall(html)}


def test_every_template_is_json_with_the_data_anchor():
    for path in PLOTS.glob("*.json"):
        spec = json.loads(path.read_text())
        assert spec["data"] == {"values": "<DVC_METRIC_DATA>"}, path.name


def test_the_page_loads_vega_from_itself_only():
    html = (PLOTS / "offline.html").read_text()
    assert "{plot_divs}" in html and "{refresh_tag}" in html
    assert "{scripts}" not in html  # DVC's CDN script tags go there: left out
    assert not re.search(r"<script[^>]+src=", html)
    libraries = _inline_libraries()
    assert list(libraries) == [lib.name for lib in offline_plots.LIBRARIES]
    for lib in offline_plots.LIBRARIES:  # the pinned versions, byte for byte
        version, js = libraries[lib.name]
        assert version == lib.version
        assert hashlib.sha256(js.encode()).hexdigest() == lib.sha256, lib.name
    assert offline_plots.page({n: js for n, (_, js) in libraries.items()}) == html  # as the module builds it


def test_dvc_uses_the_page_by_default():
    config = (REPO / ".dvc" / "config").read_text()
    assert re.search(r"\[plots\]\s*\n\s*html_template = plots/offline.html", config)


def test_curves_are_long_with_a_line_per_seed_and_term():
    histories = {seed: {"loss": [3.0, 2.0], "kl": [1.0, 0.5], "epoch_seconds": [0.1, 0.1],
                        "fusion_w_view0": [0.5, 0.5], "cold_start_loss": [9.0]} for seed in (0, 7)}
    frame = _curves_frame(histories)
    assert tuple(frame.columns) == CURVE_COLUMNS
    assert set(frame["seed"]) == {0, 7} and set(frame["term"]) == {"loss", "kl", "epoch_seconds",
                                                                     "fusion_w_view0"}
    kinds = frame.groupby("term")["kind"].first().to_dict()
    assert kinds == {"loss": "loss term", "kl": "loss term", "epoch_seconds": "diagnostic",
                     "fusion_w_view0": "diagnostic"}
    assert frame[(frame.seed == 7) & (frame.term == "loss")]["epoch"].tolist() == [1, 2]
    assert tuple(_curves_frame({}).columns) == CURVE_COLUMNS


def _outputs(work: Path) -> None:
    """What evaluate and the training stages write, small: three seeds, two snapshots."""
    out = work / "metrics" / "tiny"
    (out / "plots").mkdir(parents=True)
    histories = {s: {"loss": list(np.linspace(3, 1, 4) + s), "kl": [4.0, 3, 2, 1], "epoch_seconds": [0.1] * 4}
                 for s in (0, 1, 2)}
    for stage in ("warmup", "calibrate"):
        _curves_frame(histories).to_csv(out / f"{stage}_curves.csv", index=False)
    # as mmib.metrics.reliability_table writes it: percent, empty bins NaN
    pd.DataFrame({"bin_lower": [0, 0.5], "bin_upper": [0.5, 1], "count": [0, 10], "accuracy": [np.nan, 90.0],
                  "confidence": [np.nan, 80.0]}).to_csv(out / "reliability.csv", index=False)
    pd.DataFrame({"epoch": [1, 1], "view": [0, 1], "weight": [0.5, 0.5], "series": ["view0", "view1"]}
                 ).to_csv(out / "fusion_weights.csv", index=False)
    pd.DataFrame({"epoch": [1, 1], "view": [0, 1], "n_selected": [5, 6], "series": ["view0", "view1"]}
                 ).to_csv(out / "screened.csv", index=False)
    pd.DataFrame({"seed": [0, 0], "epoch": [1, 2], "stage": ["warmup", "calibrate"], "quantity": ["total loss"] * 2,
                  "value": [2.0, 1.0], "series": ["seed 0"] * 2}).to_csv(out / "convergence.csv", index=False)
    # snapshot names sort the wrong way round alphabetically: the panels follow `order`
    pd.DataFrame({"snapshot": ["end of warm-up (epoch 2)"] * 2 + ["end of training (epoch 4)"] * 2,
                  "order": [0, 0, 1, 1], "sample": [0, 1, 0, 1], "x": [1.0, 2, 3, 4], "y": [1.0, 2, 3, 4],
                  "label": [0, 1, 0, 1]}).to_csv(out / "tsne.csv", index=False)
    (out / "plots" / "tsne.png").write_bytes(b"\x89PNG\r\n\x1a\n")


@pytest.fixture(scope="module")
def plotted(tmp_path_factory) -> tuple[Path, dict, dict]:
    work, env = fresh_clone(tmp_path_factory.mktemp("plots") / "repo")
    _outputs(work)
    shown = json.loads(run(["dvc", "plots", "show", "--json"], work, env))
    return work, env, shown


def test_dvc_plots_fill_the_templates(plotted):
    _work, _env, shown = plotted
    assert not shown.get("errors"), shown["errors"]
    names = {Path(k).name for k in shown["data"]}
    assert "tsne.png" not in names, "a figure drawn twice (PNG and Vega)"
    curves = shown["data"]["metrics/tiny/warmup_curves.csv"][0]["content"]
    assert curves["spec"]["encoding"]["color"]["field"] == "seed"
    assert curves["facet"]["field"] == "term"
    assert {p["seed"] for p in curves["data"]["values"]} == {"0", "1", "2"}
    reliability = shown["data"]["metrics/tiny/reliability.csv"][0]["content"]
    diagonal, points = reliability["layer"]
    assert diagonal["data"]["values"] == [{"percent": 0}, {"percent": 100}]
    assert points["encoding"]["x"]["scale"]["domain"] == [0, 100]


def test_dvc_plots_page_has_no_cdn(plotted):
    work, env, _shown = plotted
    run(["dvc", "plots", "show", "-o", "page"], work, env)
    html = (work / "page" / "index.html").read_text()
    assert "cdn.jsdelivr" not in html and "vegaEmbed(" in html
    assert 'data-library="vega@' in html


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_inline_libraries_render_every_chart_offline(plotted, tmp_path):
    """The page's own vega + vega-lite (no network) compile and draw each chart to SVG."""
    _work, _env, shown = plotted
    for name, (_version, js) in _inline_libraries().items():
        (tmp_path / f"{name}.js").write_text(js)
    (tmp_path / "node_modules" / "vega").mkdir(parents=True)  # vega-lite's require("vega")
    (tmp_path / "node_modules" / "vega" / "index.js").write_text('module.exports = require("../../vega.js");\n')
    (tmp_path / "specs.json").write_text(json.dumps({k: v[0]["content"] for k, v in shown["data"].items()}))
    (tmp_path / "render.js").write_text("""
const vega = require("./vega.js"), vl = require("./vega-lite.js");
const specs = JSON.parse(require("fs").readFileSync("specs.json"));
(async () => {
  const out = {};
  for (const [name, spec] of Object.entries(specs)) {
    out[name] = await new vega.View(vega.parse(vl.compile(spec).spec), {renderer: "none"}).toSVG();
  }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
""")
    proc = subprocess.run(["node", "render.js"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    svgs = json.loads(proc.stdout)
    texts = {name: re.findall(r"<text[^>]*>([^<]*)</text>", svg) for name, svg in svgs.items()}
    curves = texts["metrics/tiny/warmup_curves.csv"]
    assert "seed" in curves and {"0", "1", "2"} <= set(curves)          # a legend entry per seed
    assert curves.index("loss") < curves.index("kl") and "epoch_seconds" not in curves
    reliability = texts["metrics/tiny/reliability.csv"]
    assert "100" in reliability and "confidence (%)" in reliability and "accuracy (%)" in reliability
    assert 'width="' in svgs["metrics/tiny/reliability.csv"][:200]
    width = int(re.search(r'width="(\d+)"', svgs["metrics/tiny/reliability.csv"]).group(1))
    assert width < 1000, "the points fall outside the 0-100 axes"
    tsne = texts["metrics/tiny/tsne.csv"]
    assert tsne.index("end of warm-up (epoch 2)") < tsne.index("end of training (epoch 4)")
    assert "class" in tsne
