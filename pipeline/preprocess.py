"""DVC stage: load one catalog dataset, validate, scale, write data/processed/<name>.{npz,json,scaler.npz}.

    PYTHONPATH=src python pipeline/preprocess.py <dataset_name> [--params params.yaml]

Bad input exits with status 2 and a one-paragraph message (no traceback);
nothing is written before everything has been validated, so the previous
outputs stay as they were.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # no editable install needed

from mmib.interpreter import use_project_python  # noqa: E402

use_project_python()  # before any third-party import: DVC may have started us with a bare python

from mmib.entry import stage_process  # noqa: E402
from mmib.errors import InputError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a name from data/catalog.yaml")
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    parser.add_argument("--out", default=None, help="output folder (default data/processed)")
    args = parser.parse_args(argv)
    try:
        with stage_process(f"preprocess@{args.dataset}", args.params):
            return _preprocess(args)
    except InputError as exc:
        print(f"preprocess {args.dataset}: {exc}", file=sys.stderr)
        return 2


def _preprocess(args: argparse.Namespace) -> int:
    """The stage's work; its imports are here, after stage_process bound this process to its launcher.

    params.yaml is validated whole by the same strict model as every other stage
    (:func:`mmib.config.load_params`): a typo such as ``preprocess.scalng`` stops the stage.
    """
    import warnings

    from mmib.config import load_params
    from mmib.data import CATALOG_FILE, dataset_entry, load_dataset, prepare, resolve_data_root
    from mmib.data.processed import PROCESSED_DIR, summarize, write_processed, write_scaler
    from mmib.errors import InputWarning

    params = load_params(args.params)
    raw = params.model_dump()
    entry = dataset_entry(raw, args.dataset, str(Path(args.params).parent / CATALOG_FILE))
    scaling = params.preprocess.scaling
    data = load_dataset(entry, args.dataset, resolve_data_root(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputWarning)
        arrays = prepare(data, scaling, entry.expect.n_clusters)
    for warning in caught:
        if issubclass(warning.category, InputWarning):
            print(f"preprocess {args.dataset}: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    npz, js = write_processed(args.dataset, arrays, summarize(data, entry, arrays, scaling),
                              args.out or PROCESSED_DIR)
    write_scaler(args.dataset, data.views, scaling, args.out or PROCESSED_DIR)  # for the served model
    dims = "x".join(str(arrays[f"view{i}"].shape[1]) for i in range(len(data.views)))
    print(f"preprocess {args.dataset}: {arrays['view0'].shape[0]} samples, views {dims}, "
          f"{entry.expect.n_clusters} clusters, scaling {scaling} -> {npz}, {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
