"""Stages run with the project's Python, whatever PATH says.

DVC runs a stage's ``cmd`` (``python pipeline/<stage>.py``) with the first
``python`` on PATH. A user who calls ``.venv/bin/dvc exp run`` without
activating the venv gets the system Python, which lacks the project's
libraries, and the stage dies with "No module named pandas". Each entry
point calls :func:`use_project_python` first (standard library only): when a
required library is missing and the repository's ``.venv`` exists, the stage
re-executes itself with that venv's Python; without a venv it stops with a
message that names the fix.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
REQUIRED = ("numpy", "torch", "pandas", "sklearn", "yaml", "pydantic")
_REEXEC_FLAG = "MMIB_REEXECUTED"


def missing_modules(required: Sequence[str] = REQUIRED) -> list[str]:
    """The required top-level modules this interpreter cannot import."""
    return [name for name in required if importlib.util.find_spec(name) is None]


def use_project_python(required: Sequence[str] = REQUIRED, venv_python: Path = VENV_PYTHON) -> None:
    """Return if this interpreter has ``required``; else re-exec with ``venv_python`` or exit 2."""
    missing = missing_modules(required)
    if not missing:
        return
    if venv_python.exists() and not os.environ.get(_REEXEC_FLAG):
        os.environ[_REEXEC_FLAG] = "1"  # the venv's Python lacking them too must not loop
        os.execv(str(venv_python), [str(venv_python), *sys.argv])
    sys.stderr.write(
        f"error: this stage runs with {sys.executable}, which cannot import {', '.join(missing)}.\n"
        f"fix: run `make repro` once (it creates {venv_python.parent.parent} and installs the project), "
        "then `source .venv/bin/activate` before `dvc repro` / `dvc exp run`\n")
    raise SystemExit(2)
