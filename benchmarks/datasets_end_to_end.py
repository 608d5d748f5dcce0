"""Time every stage of the pipeline, end to end, for each dataset; print the device.

    python benchmarks/datasets_end_to_end.py --data-root ../shared/data \\
        --datasets caltech_2v youcook cub handwritten [--seeds 0 1 2 3 4]

Runs the stage scripts (preprocess, baselines, warmup, calibrate, evaluate)
in a scratch copy of the repository's tracked files, with params.yaml as it
is (plus the chosen datasets and seeds) and MLflow off, so the workspace's
DVC outputs are untouched. Prints seconds per stage and per dataset, and the
ACC / NMI / ECE it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("preprocess", "baselines", "warmup", "calibrate", "evaluate")


def scratch_copy(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for rel in files:
        if rel.startswith(("metrics/", "models/")):
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst / rel)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["mfeat"])
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default: params.yaml seeds")
    ap.add_argument("--data-root", default=None, help="default: params.yaml data_root")
    args = ap.parse_args()
    import torch

    device = "cuda (" + torch.cuda.get_device_name(0) + ")" if torch.cuda.is_available() else "cpu"
    print(f"device: {device}; cores: {os.cpu_count()}; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="mmib-bench-") as tmp:
        work = Path(tmp)
        scratch_copy(work)
        params = yaml.safe_load((work / "params.yaml").read_text())
        params["datasets"] = args.datasets
        if args.seeds:
            params["seeds"] = args.seeds
        if args.data_root:
            params["data_root"] = str(Path(args.data_root).resolve())
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        env = {**os.environ, "PYTHONPATH": str(work / "src"), "MMIB_TRACKING": "0"}
        env.pop("MMIB_DATA_ROOT", None)
        print(f"seeds: {params['seeds']}; warm-up {params['warmup']['epochs']} + calibration "
              f"{params['calibrate']['epochs']} epochs, batch {params['warmup']['batch_size']}")
        header = f"{'dataset':<14}" + "".join(f"{s:>12}" for s in STAGES) + f"{'total':>10}   ACC / NMI / ECE"
        print(header)
        for name in args.datasets:
            times = {}
            for stage in STAGES:
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, f"pipeline/{stage}.py", name], cwd=work, env=env,
                                      capture_output=True, text=True)
                times[stage] = time.perf_counter() - t0
                if proc.returncode != 0:
                    print(f"{name}: {stage} failed:\n{proc.stderr[-2000:]}")
                    return 1
            ev = json.loads((work / "metrics" / "evaluate" / f"{name}.json").read_text())
            res = " / ".join(f"{ev[k]['mean']:.1f}±{ev[k]['std']:.1f}" for k in ("acc", "nmi", "ece"))
            print(f"{name:<14}" + "".join(f"{times[s]:>11.1f}s" for s in STAGES)
                  + f"{sum(times.values()):>9.1f}s   {res}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
