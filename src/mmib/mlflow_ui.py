"""``make ui``: the MLflow UI on this repository's store, opened on the training view.

MLflow 3.17's UI chooses between its GenAI view (traces) and its training
view (runs) by the ``workflowType`` in the URL, else by the browser's last
choice, GenAI by default; the experiment's ``mlflow.experimentKind`` tag does
not override it. So this prints the link to the experiment's runs with
``workflowType=machine_learning`` and then starts ``mlflow ui`` in the
directory of ``mlflow.db`` (the store records artifact locations relative
to it, :mod:`mmib.tracking`).

``python -m mmib.mlflow_ui [--port 5000] [--print-url]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from mmib import tracking

HOST = "127.0.0.1"


def ui_url(experiment_id: str, host: str = HOST, port: int = 5000) -> str:
    """The experiment's runs in the training view of ``mlflow ui``."""
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmib.mlflow_ui", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--print-url", action="store_true", help="print the link and exit")
    args = parser.parse_args(argv)
    uri = tracking.tracking_uri()
    url = ui_url(tracking.ensure_experiment(), port=args.port)
    print(f"MLflow runs of experiment {tracking.DEFAULT_EXPERIMENT!r} (training view): {url}", flush=True)
    if args.print_url:
        return 0
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow") or "mlflow"
    root = tracking.artifact_root(uri)
    if root is not None:
        os.chdir(root.parent)  # relative artifact locations resolve from here
    os.execv(mlflow, [mlflow, "ui", "--backend-store-uri", uri, "--host", HOST, "--port", str(args.port)])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
