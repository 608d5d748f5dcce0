"""Tests read the committed params, not the workspace's (issue 10 item 2): after the README's own
``dvc exp run -S alpha=0.3`` the workspace keeps alpha 0.3, and the suite must still pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_tests_pass_with_an_experiments_params_left_in_the_workspace(tmp_path):
    work = tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in tracked:
        if rel.startswith(("src/", "tests/")) or rel in ("params.yaml", "dvc.yaml", "pyproject.toml"):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    (work / "data" / "reference").mkdir(parents=True)
    shutil.copy2(REPO / "data" / "reference" / "paper_tables.csv", work / "data" / "reference")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PYTHONPATH": str(work / "src"), "MMIB_TRACKING": "0"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "clone"]):
        subprocess.run(cmd, cwd=work, env=env, check=True)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["alpha"] = 0.3  # what `dvc exp run -S alpha=0.3` leaves behind
    params["calibrate"]["losses"]["con"] = not params["calibrate"]["losses"]["con"]
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_ablations.py", "tests/test_quality_switches.py"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
