"""Does the seeds' agreement (label-free) move with the accuracy against the labels? (README
"Choosing a recipe without labels")

Reads the probabilities that ``benchmarks/quality.py --dump DIR`` saved (``<dataset>-<recipe>-<seed>.npz``,
each with ``proba`` and ``labels``) for a reference recipe and for variants, and prints per
(dataset, variant): the mean NMI between the seeds' partitions (no label) and the mean NMI against
the labels, for the reference and the variant, then the correlation of the two changes over all
pairs, how often their signs agree, and how NMI moved where the agreement fell, held or rose by
more than ``--margin`` points. Labels are read here, to score, as in every benchmark.

    python benchmarks/seed_agreement.py --reference benchmarks/quality-2026-12-02.jsonl.probas \\
        --variants docs-probas/ --seeds 0 1
"""

from __future__ import annotations

import argparse
import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import normalized_mutual_info_score as nmi


def _runs(folder: Path) -> dict[tuple[str, str], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """{(dataset, recipe): {seed: (partition, labels)}} of every dump in ``folder``."""
    runs: dict[tuple[str, str], dict[int, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for path in sorted(folder.glob("*.npz")):
        dataset, recipe, seed = path.stem.rsplit("-", 2)
        with np.load(path) as z:
            runs[(dataset, recipe)][int(seed)] = (z["proba"].argmax(axis=1), z["labels"])
    return runs


def scores(seeds: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(mean NMI between every pair of seeds, mean NMI of each seed against the labels), percent."""
    parts = [p for p, _ in seeds.values()]
    agreement = np.mean([nmi(a, b) for a, b in itertools.combinations(parts, 2)])
    return 100 * float(agreement), 100 * float(np.mean([nmi(y, p) for p, y in seeds.values()]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, required=True, help="dump folder holding the reference recipe")
    ap.add_argument("--recipe", default="default", help="the reference recipe's name in the dump files")
    ap.add_argument("--variants", type=Path, required=True, help="dump folder holding the variants")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="only these seeds (same for both)")
    ap.add_argument("--margin", type=float, default=3.0, help="agreement change (NMI points) counted as a move")
    args = ap.parse_args(argv)
    keep = (lambda s: {k: v for k, v in s.items() if k in args.seeds}) if args.seeds else (lambda s: s)
    reference = {ds: keep(s) for (ds, rec), s in _runs(args.reference).items() if rec == args.recipe}
    changes = []
    print("| dataset | variant | seeds | agreement ref -> variant | NMI ref -> variant |")
    print("|---|---|---|---|---|")
    for (dataset, recipe), seeds in sorted(_runs(args.variants).items()):
        seeds, ref = keep(seeds), reference.get(dataset, {})
        if recipe == args.recipe or len(seeds) < 2 or len(ref) < 2:
            continue
        (a0, n0), (a1, n1) = scores(ref), scores(seeds)
        changes.append((a1 - a0, n1 - n0))
        print(f"| {dataset} | {recipe} | {len(seeds)} | {a0:.1f} -> {a1:.1f} | {n0:.1f} -> {n1:.1f} |")
    if len(changes) >= 3:
        d = np.array(changes)
        same = int(np.sum(np.sign(d[:, 0]) == np.sign(d[:, 1])))
        print(f"\n{len(d)} variants: correlation of the changes {np.corrcoef(d[:, 0], d[:, 1])[0, 1]:.2f}, "
              f"same sign in {same} of {len(d)}")
        for name, rows in (("agreement falls by more than", d[:, 0] < -args.margin),
                           ("agreement within +-", np.abs(d[:, 0]) <= args.margin),
                           ("agreement rises by more than", d[:, 0] > args.margin)):
            nmi_change = d[rows, 1]
            print(f"{name} {args.margin:g}: {int(rows.sum())} variants, NMI fell in {int(np.sum(nmi_change < 0))}, "
                  f"rose in {int(np.sum(nmi_change > 0))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
