"""Quality benchmark: CLIB recipes, MSDIB and the classical baselines on every dataset we have.

Protocol (README "Honest protocol"): one fixed config per recipe for every
dataset, R seeds, the final model of each seed, mean +- std; labels are read
only here, after training, to score. Recipes are params.yaml plus dotted
overrides (the same keys as ``dvc exp run -S``):

- ``default``: params.yaml as it is (the shipped recipe);
- ``paper``: the paper's literal reading (:data:`mmib.recipes.PAPER_READING`);
- ``msdib``: MSDIB with params.yaml's ``msdib:`` section;
- ``ALLKM`` / ``ALLNcuts``: :mod:`mmib.baselines` on the concatenated views.

Examples::

    python benchmarks/quality.py --datasets caltech_2v mfeat --seeds 0 1 2 3 4 \\
        --recipes default paper msdib baselines --out docs/quality.jsonl
    python benchmarks/quality.py --datasets caltech_2v --seeds 0 \\
        --set calibrate.targets=hungarian --name try-hungarian

Each finished (dataset, recipe, seed) is one JSON line in ``--out`` (runs
already there are skipped, so an interrupted benchmark resumes); the summary
table (markdown) is printed and, with ``--table``, written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mmib.atomic_io import atomic_path  # noqa: E402
from mmib.data.catalog import read_params  # noqa: E402
from mmib.recipes import PAPER_READING, apply_overrides  # noqa: E402

DATA_ROOT = os.environ.get("MMIB_DATA_ROOT", str(ROOT.parent / "shared" / "data"))
ALL_DATASETS = ["caltech_2v", "youcook", "cub", "handwritten", "mnist_usps", "bdgp", "synthetic3d",
                "leaves100", "mfeat"]


def load_views(raw: dict, name: str) -> tuple[list[np.ndarray], np.ndarray, int]:
    """The preprocess stage's arrays (scaled views, labels 0..C-1) without writing anything."""
    from mmib.data.catalog import dataset_entry
    from mmib.data.loaders import load_dataset
    from mmib.data.prepare import prepare

    entry = dataset_entry(raw, name)
    data = load_dataset(entry, name, DATA_ROOT)
    n_clusters = entry.expect.n_clusters
    arrays = prepare(data, raw["preprocess"]["scaling"], n_clusters)
    views = [arrays[f"view{i}"] for i in range(len(data.views))]
    return views, arrays["labels"], n_clusters


def _trace_scores(model, labels: np.ndarray) -> dict:
    """Label-scored trace: K-Means of h^f at the end of the warm-up, the head after the cold start,
    and the cluster head's ACC after every calibration epoch."""
    from mmib.metrics import clustering_accuracy, nmi

    tr = model.trace_
    out = {}
    if tr.warmup:
        out["warmup_km_acc"] = clustering_accuracy(labels, tr.warmup[-1])
        out["warmup_km_nmi"] = nmi(labels, tr.warmup[-1])
        out["warmup_accs"] = [round(clustering_accuracy(labels, a), 2) for a in tr.warmup]
    accs = [clustering_accuracy(labels, a) for a in tr.calibrate]
    if accs:
        out["cold_start_acc"] = accs[0]
        out["cal_accs"] = [round(a, 2) for a in accs]
    cal = model.history_.get("calibrate", {})
    ks = [cal[k] for k in sorted(cal) if k.startswith("n_selected_view")]
    if ks:
        out["k_first"] = float(np.sum([k[0] for k in ks]))
        out["k_last"] = float(np.sum([k[-1] for k in ks]))
    return out


def run_one(job: dict) -> dict:
    import torch

    torch.set_num_threads(job.get("threads", 1))
    from mmib.baselines import concatenate_views, kmeans_predict, ncuts_predict
    from mmib.config import parse_params
    from mmib.metrics import evaluate_hard_clustering, evaluate_soft_clustering

    raw = apply_overrides(read_params(job["params"]), job["overrides"])
    views, labels, c = load_views(raw, job["dataset"])
    seed, recipe = job["seed"], job["recipe"]
    t0 = time.perf_counter()
    res: dict = {}
    if recipe in ("ALLKM", "ALLNcuts"):
        x = concatenate_views(views)
        n_nb = raw["baselines"]["ncuts_n_neighbors"]
        pred = (kmeans_predict(x, c, seed, raw["baselines"]["kmeans_n_init"]) if recipe == "ALLKM"
                else ncuts_predict(x, c, seed, raw["baselines"]["ncuts_affinity"], n_nb))
        res = evaluate_hard_clustering(labels, pred)
    else:
        params = parse_params(raw)
        if recipe == "msdib":
            from mmib.methods.msdib.estimator import MSDIB
            model = MSDIB(c, config=params.msdib, seed=seed, device="cpu", progress=False).fit(views)
        else:
            from mmib.methods.clib.estimator import CLIB
            model = CLIB.from_params(params, c, seed, progress=False)
            model.device = "cpu"
            model.fit(views)
            res.update(_trace_scores(model, labels))
        proba = model.predict_proba(views)
        res.update(evaluate_soft_clustering(labels, proba))
        if recipe != "msdib":  # the head's own confidence; calibrate.confidence tempers it once all seeds are in
            res["confidence"] = params.calibrate.confidence
            res["ece_head"], res["mean_confidence_head"] = res["ece"], res["mean_confidence"]
            _probas_path(job).parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(_probas_path(job), proba=proba, labels=labels)
        if job.get("dump"):
            _dump_outputs(model, views, proba, labels, Path(job["dump"]) / f"{job['dataset']}-{job['name']}-{seed}.npz")
    res["seconds"] = time.perf_counter() - t0
    return {**{k: job[k] for k in ("dataset", "recipe", "seed", "overrides")}, **res}


def _dump_outputs(model, views: list[np.ndarray], proba: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """A CLIB run's outputs for offline study: head and calibration-head probabilities, fused features
    (posterior means), the cold-start head's probabilities and the labels."""
    import torch

    from mmib.methods.clib.estimator import _as_tensors

    xs = _as_tensors(views, model.device_, model.dims_)
    enc, _, p_cal = model._eval_outputs(xs)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {f"cal{m}": p.cpu().numpy() for m, p in enumerate(p_cal)}
    with torch.no_grad():
        np.savez_compressed(path, proba=proba, fused=enc.fused.cpu().numpy(), labels=labels,
                            cold=np.asarray(model.trace_.first_calibration_proba), **extra)


def _probas_path(job: dict) -> Path:
    return Path(job["out"] + ".probas") / f"{job['dataset']}-{job['name']}-{job['seed']}.npz"


def temper_seeds(rows: list[dict], out: str, params_path: str) -> list[dict]:
    """``calibrate.confidence`` as the calibrate stage applies it: per (dataset, recipe), each seed's
    temperature from its agreement with the other seeds (and the raw views' normalized cut)
    (:mod:`mmib.confidence`); ECE and mean confidence are re-scored on the tempered probabilities
    (the head's own stay in ``*_head``)."""
    from mmib.confidence import agreement_temperatures, reference_partitions, temperature_scale
    from mmib.metrics import evaluate_soft_clustering

    raw = read_params(params_path)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("confidence") in ("seeds", "seeds_and_ncuts"):
            groups.setdefault((r["dataset"], r["recipe"], r["confidence"]), []).append(r)
    for (ds, rec, mode), rs in groups.items():
        files = [_probas_path({"out": out, "dataset": ds, "name": rec, "seed": r["seed"]}) for r in rs]
        if not all(f.exists() for f in files):
            continue
        loaded = [np.load(f) for f in files]
        refs = reference_partitions(load_views(raw, ds)[0], loaded[0]["proba"].shape[1], mode,
                                    min(r["seed"] for r in rs)) if mode != "seeds" else []
        temps = agreement_temperatures([d["proba"] for d in loaded], refs)
        for r, d, t in zip(rs, loaded, temps):
            scored = evaluate_soft_clustering(d["labels"], temperature_scale(d["proba"], t))
            r.update(ece=scored["ece"], mean_confidence=scored["mean_confidence"], temperature=t)
    return rows


def recipe_overrides(recipe: str, extra: list[str]) -> list[str]:
    if recipe == "paper":
        return [*PAPER_READING, *extra]
    return list(extra)


def read_rows(path: str | Path) -> list[dict]:
    """The results of a benchmark file (one JSON object per line)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def mean_std_cell(rows: list[dict], key: str, empty: str = "—") -> str:
    """``mean ± std`` over the rows that hold ``key`` (one decimal), or ``empty``."""
    vals = [r[key] for r in rows if r.get(key) is not None]
    return f"{np.mean(vals):.1f} ± {np.std(vals):.1f}" if vals else empty


def summarise(rows: list[dict]) -> str:
    keys = ["acc", "nmi", "ari", "ece", "mean_confidence", "ece_head", "temperature", "warmup_km_acc", "cold_start_acc", "k_first", "k_last",
            "seconds"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["recipe"]), []).append(r)
    lines = ["| dataset | recipe | seeds | " + " | ".join(keys) + " |", "|---" * (len(keys) + 3) + "|"]
    for (ds, rec), rs in sorted(groups.items()):
        cells = [mean_std_cell(rs, k) for k in keys]
        lines.append(f"| {ds} | {rec} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarise_file(path: str, recipes: list[str] | None = None) -> str:
    """The summary table of a results file (``python benchmarks/quality.py --summarise FILE``)."""
    rows = read_rows(path)
    return summarise([r for r in rows if recipes is None or r["recipe"] in recipes])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=ALL_DATASETS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--recipes", nargs="+", default=["default"],
                    help="default | paper | msdib | baselines (= ALLKM ALLNcuts)")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="dotted override applied to the CLIB recipes, e.g. calibrate.targets=hungarian")
    ap.add_argument("--name", default=None, help="recipe name in the output (default: the recipe)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel single-thread processes")
    ap.add_argument("--out", default="benchmarks/quality.jsonl")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"), help="the recipe's params file (default: the "
                    "repository's params.yaml; pass a copy to keep a long run apart from edits)")
    ap.add_argument("--dump", default=None, help="also save each CLIB run's probabilities and fused features "
                                                 "(npz) under this folder, for offline study")
    ap.add_argument("--table", default=None, help="also write the summary table here")
    ap.add_argument("--summarise", metavar="FILE", default=None, help="only print the table of a results file")
    ap.add_argument("--retemper", metavar="FILE", default=None,
                    help="re-score the confidence of a results file's CLIB rows (but the paper reading's) "
                         "with --mode (head | seeds | seeds_and_ncuts), from its saved probabilities")
    ap.add_argument("--mode", default="seeds_and_ncuts", choices=["head", "seeds", "seeds_and_ncuts"])
    args = ap.parse_args(argv)
    if args.retemper:  # re-score a finished file's confidence with another calibrate.confidence mode
        rows = read_rows(args.retemper)
        for r in rows:
            if "ece_head" in r and r.get("recipe") not in ("paper",):
                r["confidence"] = args.mode
                if args.mode == "head":
                    r.update(ece=r["ece_head"], mean_confidence=r["mean_confidence_head"], temperature=1.0)
        rows = temper_seeds(rows, args.retemper, args.params)
        with atomic_path(args.retemper) as tmp:
            Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(summarise(rows))
        return
    if args.summarise:
        print(summarise_file(args.summarise))
        return

    recipes = [r for rec in args.recipes for r in (["ALLKM", "ALLNcuts"] if rec == "baselines" else [rec])]
    out = Path(args.out)
    done = read_rows(out) if out.exists() else []
    seen = {(r["dataset"], r["recipe"], r["seed"]) for r in done}
    jobs = []
    for ds in args.datasets:
        for rec in recipes:
            name = args.name if (args.name and rec not in ("ALLKM", "ALLNcuts", "msdib")) else rec
            for seed in args.seeds:
                if (ds, name, seed) in seen:
                    continue
                ov = recipe_overrides(rec, args.overrides) if rec not in ("ALLKM", "ALLNcuts") else []
                jobs.append({"dataset": ds, "recipe": rec, "seed": seed, "overrides": ov, "name": name,
                             "dump": args.dump, "out": str(out), "params": args.params})
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for job, res in zip(jobs, pool.map(run_one, jobs)):
            res["recipe"] = job["name"]
            done.append(res)
            with out.open("a") as fh:
                fh.write(json.dumps(res) + "\n")
            print(f"{res['dataset']:>12} {res['recipe']:>16} seed {res['seed']}: ACC {res['acc']:.1f} "
                  f"NMI {res['nmi']:.1f} ECE {res.get('ece', float('nan')):.1f} "
                  f"({res['seconds']:.0f} s) {res.get('cal_accs', '')}", flush=True)
    done = temper_seeds(done, str(out), args.params)
    with atomic_path(out) as tmp:  # an interrupted rewrite keeps the results file whole
        Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in done))
    wanted = {(ds, (args.name or r) if r not in ("ALLKM", "ALLNcuts", "msdib") else r)
              for ds in args.datasets for r in recipes}
    table = summarise([r for r in done if (r["dataset"], r["recipe"]) in wanted])
    print(table)
    if args.table:
        Path(args.table).write_text(table + "\n")


if __name__ == "__main__":
    main()
