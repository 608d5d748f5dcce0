"""DVC stage `baselines@<dataset>`: KM, Ncuts (best view and mean over views), ALLKM, ALLNcuts over the seeds, MLflow run.

    PYTHONPATH=src python pipeline/baselines.py <dataset> [--params params.yaml]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # no editable install needed

from mmib.interpreter import use_project_python  # noqa: E402

use_project_python()  # before any third-party import: DVC may have started us with a bare python

from mmib.lifeline import bind_to_launcher  # noqa: E402

if __name__ == "__main__":
    bind_to_launcher()  # before importing torch, pandas and the rest (seconds)
    from mmib.stages import baselines  # this stage's module only: dvc.yaml lists what it imports

    sys.exit(baselines.main())
