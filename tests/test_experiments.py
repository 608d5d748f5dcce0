"""Collecting `dvc exp show --json` into the experiments table."""

from mmib.experiments import experiment_rows, render_markdown


def _rev(rev, name, method, alpha, acc, extra_params=None):
    params = {"method": method, "alpha": alpha, "beta": 0.5, "seeds": [0, 1],
              "msdib": {"alpha": 0.3, "beta": 0.7}, **(extra_params or {})}
    metrics = {"mfeat": {"acc": {"mean": acc, "std": 1.0}, "nmi": {"mean": 50.0, "std": 2.0},
                         "ece": {"mean": 10.0, "std": 0.5}, "mean_confidence": {"mean": 60.0, "std": 0.1},
                         "lowest_loss_seed": {"acc": 1.0, "seed": 0}}}
    return {"rev": rev, "name": name,
            "data": {"params": {"params.yaml": {"data": params}},
                     "metrics": {"metrics/metrics.json": {"data": metrics}}}}


SHOW = [
    _rev("workspace", None, "clib", 0.9, 11.0),  # in flux: never reported
    {**_rev("a" * 40, "main", "clib", 0.5, 70.0),
     "experiments": [{"revs": [_rev("b" * 40, "exp-msdib", "msdib", 0.5, 60.0)]},
                     {"revs": [_rev("c" * 40, "exp-omib", "omib", 0.5, 90.0)]},
                     # still running: DVC reports the workspace's data under its name
                     {"revs": [{**_rev("d" * 40, "exp-running", "clib", 0.1, 12.0),
                                "data": {**_rev("x", None, "clib", 0.1, 12.0)["data"], "rev": "workspace"}}]}]},
]


def test_rows_per_experiment_method_and_metric():
    rows = experiment_rows(SHOW)
    assert {r["experiment"] for r in rows} == {"main", "exp-msdib", "exp-omib"}
    acc = {r["experiment"]: r["mean"] for r in rows if r["metric"] == "acc"}
    assert acc == {"main": 70.0, "exp-msdib": 60.0, "exp-omib": 90.0}
    by_exp = {r["experiment"]: r for r in rows if r["metric"] == "acc"}
    assert (by_exp["main"]["alpha"], by_exp["main"]["beta"]) == (0.5, 0.5)        # CLIB's top-level
    assert (by_exp["exp-msdib"]["alpha"], by_exp["exp-msdib"]["beta"]) == (0.3, 0.7)  # msdib: section
    assert (by_exp["exp-omib"]["alpha"], by_exp["exp-omib"]["beta"]) == ("—", "—")
    assert all(r["n_seeds"] == 2 for r in rows)
    assert not any(r["metric"] == "lowest_loss_seed" for r in rows)


def test_markdown_puts_methods_side_by_side():
    text = render_markdown(experiment_rows(SHOW))
    assert "## mfeat" in text
    assert "| exp-omib | omib (supervised ceiling) | — | — | — | 2 | 90.0 ± 1.0 | 50.0 ± 2.0 | 10.0 ± 0.5 | 60.0 ± 0.1 |" in text
    assert "| main | clib | paper | 0.5 | 0.5 | 2 | 70.0 ± 1.0 |"  # params older than the switches in text
    assert "11.0" not in text and "12.0" not in text  # the workspace and running rows are skipped


def test_no_experiments():
    assert "run `dvc exp run` first" in render_markdown([])


def test_write_ablations_writes_tables_and_heatmaps(tmp_path, monkeypatch):

    from mmib.config import REPO_ROOT
    from mmib.experiments import write_ablations
    from shipped_params import shipped_params

    monkeypatch.chdir(REPO_ROOT)  # the papers' table is read from the repository
    base = shipped_params()
    records = [{"name": f"a{a}", "params": {**base, "alpha": a},
                "metrics": {"mfeat": {m: {"mean": 10 * a, "std": 0.0} for m in ("acc", "nmi", "ece")}}}
               for a in (0.1, 0.5)]
    files = write_ablations(records, out=tmp_path)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in files)
    assert names[:2] == ["ablations.csv", "ablations.md"]
    pngs = [n for n in names if n.endswith(".png")]
    assert len(pngs) == 3 and all(n.startswith("sweeps/alpha_beta_mfeat_") for n in pngs)
    assert all((tmp_path / n).stat().st_size > 1000 for n in names if n.endswith(".png"))


def test_records_carry_the_details_file_of_their_revision():
    """Table 5 and the lowest-loss seed are in metrics/details.json (not a DVC metrics file): each
    record reads it from its own revision."""
    from mmib.experiments import experiment_records

    asked = []

    def details(rev):
        asked.append(rev)
        return {"mfeat": {"hard_samples": {"end": {"acc": {"mean": float(len(asked)), "std": 0.0}}}}}

    records = experiment_records(SHOW, details=details)
    assert sorted(asked) == ["a" * 40, "b" * 40, "c" * 40]  # the finished revisions, not the workspace
    assert all("hard_samples" in r["metrics"]["mfeat"] and "acc" in r["metrics"]["mfeat"] for r in records)


def test_committed_details_is_empty_for_a_revision_without_it():
    from mmib.experiments import committed_details

    assert committed_details("0" * 40) == {}
