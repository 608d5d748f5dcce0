"""The params the tests build on: params.yaml's values as committed (git HEAD), not the workspace's.

`dvc exp run -S alpha=0.3` leaves the workspace's params.yaml at alpha 0.3
(DVC applies the last experiment to the workspace); a test reading that file
would test the user's last experiment instead of the shipped recipe, and
fail. Every value therefore comes from `git show HEAD:params.yaml`. The keys
follow the workspace file, so a param being added or removed (with its
code, not committed yet) is there with its workspace value, or gone: the
fixture always fits the code under test. Outside a git checkout the
workspace file is all there is.

The dataset catalog is not a param: it lives in data/catalog.yaml. The dicts
here hold it under ``catalog`` as ``Params.model_dump()`` does, and
:func:`write_workspace_params` splits it out again (params.yaml + data/catalog.yaml).

conftest.py points `mmib.config.DEFAULT_PARAMS` (`mmib.config.default_params()`)
at the same values for the whole session. `CLIB()` reads no params file: its
defaults are in code (`mmib.methods.clib.defaults`), checked against these
values by tests/test_estimator_params.py.
"""

from __future__ import annotations

import copy
import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKSPACE_PARAMS = REPO / "params.yaml"
CATALOG = "data/catalog.yaml"  # beside params.yaml (mmib.data.catalog.CATALOG_FILE)


@functools.cache
def _committed() -> Any:
    try:
        text = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return yaml.safe_load(text)


def _overlay(workspace: Any, committed: Any) -> Any:
    """The workspace's keys with the committed values (lists are values)."""
    if isinstance(workspace, dict) and isinstance(committed, dict):
        return {k: _overlay(v, committed[k]) if k in committed else v for k, v in workspace.items()}
    return committed


@functools.cache
def _shipped() -> dict:
    workspace = yaml.safe_load(WORKSPACE_PARAMS.read_text())
    committed = _committed()
    params = workspace if committed is None else _overlay(workspace, committed)
    return {**params, "catalog": yaml.safe_load((REPO / CATALOG).read_text())["catalog"]}


def shipped_params() -> dict:
    """A fresh copy of the shipped params (tests may edit it)."""
    return copy.deepcopy(_shipped())


def write_shipped_params(path: Path) -> Path:
    return write_workspace_params(path, shipped_params())


def write_workspace_params(path: Path, params: dict) -> Path:
    """``params`` as a workspace keeps them: params.yaml at ``path`` and, when ``params`` holds a
    ``catalog``, data/catalog.yaml beside it."""
    path = Path(path)
    path.write_text(yaml.safe_dump({k: v for k, v in params.items() if k != "catalog"}, sort_keys=False))
    if "catalog" in params:
        catalog = path.parent / CATALOG
        catalog.parent.mkdir(parents=True, exist_ok=True)
        catalog.write_text(yaml.safe_dump({"catalog": params["catalog"]}, sort_keys=False))
    return path


def read_workspace_params(path: Path) -> dict:
    """params.yaml at ``path`` with the catalog beside it (the inverse of :func:`write_workspace_params`)."""
    path = Path(path)
    params = yaml.safe_load(path.read_text())
    catalog = path.parent / CATALOG
    if catalog.exists():
        params["catalog"] = yaml.safe_load(catalog.read_text())["catalog"]
    return params
