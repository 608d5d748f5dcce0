"""Stages run with the project's Python whatever PATH says (issue "The user's view", item 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _call(tmp_path: Path, venv_python: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from pathlib import Path; from mmib.interpreter import use_project_python; "
            f"use_project_python(required=('numpy', 'no_such_module_mmib'), venv_python=Path({str(venv_python)!r})); "
            "print('continued')")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("MMIB_REEXECUTED", None)
    return subprocess.run([sys.executable, "-c", code, "stage-arg"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def test_a_python_without_the_libraries_reexecutes_the_stage_with_the_venvs(tmp_path):
    record = tmp_path / "argv.txt"
    fake = tmp_path / "venv-python"
    fake.write_text(f'#!/bin/sh\necho "$MMIB_REEXECUTED $*" > {record}\n')
    fake.chmod(0o755)
    out = _call(tmp_path, fake)
    assert out.returncode == 0, out.stderr
    assert record.read_text().split() == ["1", "-c", "stage-arg"]  # same arguments, loop guard set
    assert "continued" not in out.stdout


def test_without_a_venv_the_stage_stops_naming_the_fix(tmp_path):
    out = _call(tmp_path, tmp_path / "absent" / "python")
    assert out.returncode == 2
    assert "no_such_module_mmib" in out.stderr and "make repro" in out.stderr and "activate" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_complete_python_goes_on():
    from mmib.interpreter import missing_modules

    assert missing_modules() == []
