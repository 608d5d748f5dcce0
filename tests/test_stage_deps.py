"""Each DVC stage depends on exactly what it runs and reads (issue 11 item 2).

dvc.yaml is checked against the code: a stage's code deps are its entry point and every module of
src/mmib it imports, transitively (tests/stage_imports.py), no more, no less; its params are
``mmib.stages.declared.STAGE_PARAMS`` with ``${method}``, the active method's section, as DVC
interpolates it. Then DVC itself, on a fresh clone: editing the report stage's module leaves every
other stage up to date, and an OMIB param under ``method: clib`` re-runs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
import yaml

from shipped_params import REPO
from stage_imports import imported_files
from mmib.config import Params
from mmib.stages.declared import ACTIVE_METHOD, STAGE_PARAMS, declared_params

CODE = ("src/", "pipeline/")
METHODS = get_args(Params.model_fields["method"].annotation)


def _stages() -> dict[str, dict]:
    """dvc.yaml's stages, the body of a ``foreach`` stage in place of the stage."""
    raw = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in raw.items()}


def _dep_path(dep: str | dict) -> str:
    return dep if isinstance(dep, str) else next(iter(dep))


def _code_files(deps: list) -> set[Path]:
    """The Python files a stage's code deps cover (a directory: every .py file under it)."""
    files: set[Path] = set()
    for dep in map(_dep_path, deps):
        if dep.startswith(CODE):
            path = REPO / dep
            files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return files


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_a_stage_depends_on_the_code_it_imports_and_no_other(stage):
    entry = REPO / "pipeline" / f"{stage}.py"
    imported = imported_files(entry, REPO / "src") | {entry}
    declared = _code_files(_stages()[stage]["deps"])
    missing = sorted(str(p.relative_to(REPO)) for p in imported - declared)
    extra = sorted(str(p.relative_to(REPO)) for p in declared - imported)
    assert not missing, f"{stage} imports these: add them to its deps in dvc.yaml: {missing}"
    assert not extra, f"{stage} does not import these: drop them from its deps in dvc.yaml: {extra}"


def test_every_stage_declares_its_params_as_the_code_lists_them():
    stages = _stages()
    assert set(stages) == set(STAGE_PARAMS)
    for name, stage in stages.items():
        listed = [p.split("#")[0].strip() for p in stage.get("params", [])]
        for method in METHODS:
            resolved = [method if p == ACTIVE_METHOD else p for p in listed]
            assert resolved == declared_params(name, method), (name, method)


def _entries(stage: dict, *keys: str) -> set[str]:
    return {_dep_path(e).replace("${item}", "tiny") for key in keys for e in stage.get(key, [])}


def test_dvc_yaml_names_the_paths_the_stages_read_and_write():
    """One layout: the paths of mmib.stages.paths (and preprocess's) are the stages' deps and outputs."""
    from mmib.data.processed import processed_paths, scaler_path
    from mmib.stages import paths

    d = "tiny"
    npz, summary = processed_paths(d)
    models = {s: paths.model_path(d, s, 0).parent for s in ("warmup", "calibrate")}
    expected = {  # stage: (reads, writes)
        "preprocess": (set(), {npz, summary, scaler_path(d)}),
        "warmup": ({npz}, {models["warmup"], paths.curves_path(d, "warmup")}),
        "calibrate": ({npz, models["warmup"]}, {models["calibrate"], paths.curves_path(d, "calibrate")}),
        "evaluate": ({npz, scaler_path(d), *models.values()}, {paths.evaluation_path(d), paths.assignments_path(d)}),
        "baselines": ({npz}, {paths.baselines_path(d)}),
        "summarize": ({paths.evaluation_path(d).parent},
                      {paths.SUMMARY_PATH, paths.SUMMARY_TABLE, paths.DETAILS_PATH}),
        "report": ({paths.evaluation_path(d).parent, paths.baselines_path(d).parent, paths.PAPER_TABLES},
                   {paths.REPORT_MD, paths.REPORT_CSV}),
    }
    stages = _stages()
    assert set(expected) == set(stages)
    for name, (reads, writes) in expected.items():
        assert {str(p) for p in reads} <= _entries(stages[name], "deps"), name
        assert {str(p) for p in writes} <= _entries(stages[name], "outs", "metrics", "plots"), name


def test_the_active_method_section_exists_for_every_method():
    """``${method}`` names a section of params.yaml whatever the method (CLIB's is empty)."""
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    assert all(method in shipped for method in METHODS)
    assert shipped["clib"] == {}


def test_the_script_import_walk_follows_function_level_and_relative_imports(tmp_path):
    """The walk that makes the deps exact: imports inside functions count, relative ones resolve."""
    script = tmp_path / "s.py"
    script.write_text("def f():\n    from mmib.stages import report\n")
    found = {str(p.relative_to(REPO / "src")) for p in imported_files(script, REPO / "src")}
    assert {"mmib/__init__.py", "mmib/stages/__init__.py", "mmib/stages/report.py", "mmib/report.py",
            "mmib/tracking.py", "mmib/errors.py"} <= found  # tracking: `from .errors import InputError`
    assert "mmib/stages/train.py" not in found and "mmib/methods/registry.py" not in found


# ---------------------------------------------------------------- DVC itself, on a fresh clone


@pytest.mark.slow
def test_dvc_reruns_only_what_changed(tmp_path):
    from fresh_clone import fresh_clone, run, tiny_params

    work, env = fresh_clone(tmp_path / "repo", tiny_params(seeds=[0]))
    env = {**env, "MMIB_TRACKING": "0"}
    run(["dvc", "repro"], work, env)
    run(["git", "add", "-A"], work, env)
    run(["git", "commit", "-qm", "outputs"], work, env)

    def changed() -> set[str]:
        return set(json.loads(run(["dvc", "status", "--json"], work, env)))

    assert changed() == set()
    report = work / "src" / "mmib" / "stages" / "report.py"
    report.write_text(report.read_text() + "\n# an edit\n")
    assert changed() == {"report"}, "editing the report stage's module re-runs report only"
    run(["git", "checkout", "--", "."], work, env)

    train = work / "src" / "mmib" / "stages" / "train.py"
    train.write_text(train.read_text() + "\n# an edit\n")
    assert changed() == {"warmup@tiny", "calibrate@tiny"}  # the control: a training module retrains
    run(["git", "checkout", "--", "."], work, env)

    params = yaml.safe_load((work / "params.yaml").read_text())
    assert params["method"] == "clib"
    params["omib"]["mine_steps"] += 1
    params["msdib"]["lr"] *= 2
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert changed() == set(), "another method's section is no dependency under method: clib"
    run(["git", "checkout", "--", "."], work, env)

    out = run(["dvc", "exp", "run", "-S", "omib.mine_steps=7"], work, env)
    assert "Running stage" not in out, out
