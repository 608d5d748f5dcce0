"""Queue the CLIB paper's sweeps as DVC experiments (README "Sweeps and ablations").

    python -m mmib.sweeps table2 [-S key=value ...] [--prefix P] [--dry-run]
    python -m mmib.sweeps table3 ...
    python -m mmib.sweeps grid [--values 0.1,0.2,...,0.9] ...
    python -m mmib.sweeps paper ...   # the shipped recipe and the paper's literal reading, side by side
    dvc queue start -j 1          # run them (-j N: N at a time; each trains its seeds in parallel)
    make experiments              # when finished: metrics/ablations.md, metrics/sweeps/*.png

Each experiment is ``dvc exp run --queue summarize -n <name> -S ...``: the
target ``summarize`` skips the baselines and the report, which no sweep
changes. Extra ``-S`` overrides (datasets, seeds, data_root) go to every
experiment of the sweep. Table 5 and Figures 3, 5, 6 need no sweep: every
CLIB run writes them (``dvc repro``, ``dvc plots show``).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from mmib.recipes import PAPER_READING

LOSS_TERMS = ("cluH", "re", "caliH", "con")


def _loss_terms(*on: str) -> list[str]:
    """Every Table 2 switch set explicitly (params.yaml's default turns L_con off)."""
    return [f"calibrate.losses.{t}={'true' if t in on else 'false'}" for t in LOSS_TERMS]


# name -> overrides; the names say which paper row (mmib.ablations.table_rows places them)
TABLE2: dict[str, list[str]] = {
    "t2-cluH": _loss_terms("cluH"),
    "t2-cluH-re": _loss_terms("cluH", "re"),
    "t2-cluH-caliH": _loss_terms("cluH", "caliH"),
    "t2-cluH-con": _loss_terms("cluH", "con"),
    "t2-no-warmup": ["calibrate.warmup_free=true", *_loss_terms(*LOSS_TERMS)],
    "t2-heads-backprop": ["calibrate.cal_heads_backprop=true", *_loss_terms(*LOSS_TERMS)],
    "t2-clib": _loss_terms(*LOSS_TERMS),
    "t2-default": _loss_terms("cluH", "re", "caliH"),  # the shipped recipe's terms (no L_con)
}
TABLE3: dict[str, list[str]] = {f"t3-{rule}": [f"calibrate.screening={rule}"] for rule in ("maxprob", "s1", "s2", "s3")}
# the shipped recipe (params.yaml) next to the paper's literal reading (mmib.recipes.PAPER_READING)
PAPER: dict[str, list[str]] = {"recipe-default": [], "recipe-paper": list(PAPER_READING)}
GRID_VALUES = tuple(round(0.1 * i, 1) for i in range(1, 10))  # Figure 2: 0.1 .. 0.9


def grid(values: tuple[float, ...] = GRID_VALUES) -> dict[str, list[str]]:
    return {f"grid-a{a:g}-b{b:g}": [f"alpha={a:g}", f"beta={b:g}"] for b in values for a in values}


def commands(sweep: str, extra: list[str], prefix: str = "", values: tuple[float, ...] = GRID_VALUES,
             dvc: str = "dvc") -> list[list[str]]:
    """The ``dvc exp run --queue`` command lines of one sweep."""
    variants = {"table2": TABLE2, "table3": TABLE3, "paper": PAPER}.get(sweep) or (
        grid(values) if sweep == "grid" else None)
    if variants is None:
        raise ValueError(f"unknown sweep {sweep!r}: use table2, table3, grid or paper")
    out = []
    for name, overrides in variants.items():
        cmd = [dvc, "exp", "run", "--queue", "summarize", "-n", f"{prefix}{name}"]
        for item in list(extra) + overrides:
            cmd += ["-S", item]
        out.append(cmd)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmib.sweeps", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", choices=("table2", "table3", "grid", "paper"))
    parser.add_argument("-S", "--set-param", action="append", default=[], dest="extra", metavar="KEY=VALUE",
                        help="a params.yaml override for every experiment (e.g. 'datasets=[caltech_2v]')")
    parser.add_argument("--prefix", default="", help="prefix of the experiment names (e.g. the dataset)")
    parser.add_argument("--values", default=",".join(f"{v:g}" for v in GRID_VALUES),
                        help="grid values of alpha and beta, comma-separated (default 0.1..0.9)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, queue nothing")
    args = parser.parse_args(argv)
    try:
        values = tuple(float(v) for v in args.values.split(","))
    except ValueError:
        parser.error(f"--values must be comma-separated numbers, got {args.values!r}")
    from mmib.experiments import _dvc

    for cmd in commands(args.sweep, args.extra, args.prefix, values, dvc=_dvc()):
        print(shlex.join(cmd))
        if not args.dry_run:
            proc = subprocess.run(cmd)
            if proc.returncode != 0:
                print(f"error: queueing failed (exit {proc.returncode}); already queued: see `dvc queue status`",
                      file=sys.stderr)
                return proc.returncode
    if not args.dry_run:
        print("queued: now `dvc queue start -j 1`, then `make experiments` when `dvc queue status` shows them done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
