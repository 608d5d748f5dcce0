"""The command line every stage shares: ``pipeline/<stage>.py [dataset] [--params params.yaml]``."""

from __future__ import annotations

import sys
from typing import Any, Callable

from mmib.config import Params, load_params
from mmib.errors import InputError


def run_cli(fn: Callable[..., Any], *args: Any, params_path: str = "params.yaml") -> int:
    """Run a stage function; bad input becomes a one-paragraph message and exit status 2."""
    from mmib.data.freshness import check_sources_unchanged

    try:
        params = load_params(params_path)
        for dataset in args:
            check_dataset_declared(dataset, params)
            check_sources_unchanged(dataset, params.model_dump())
        fn(*args, params)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(stage: str, fn: Callable[..., Any], argv: list[str] | None = None, per_dataset: bool = True) -> int:
    """Command line of one stage, ``fn(dataset, params)`` (``fn(params)`` for a stage over all
    ``datasets``: ``per_dataset`` False), bound to its launcher and under the repository's stage
    lock (:mod:`mmib.entry`)."""
    import argparse

    from mmib.entry import stage_process

    parser = argparse.ArgumentParser(prog=f"pipeline/{stage}.py", description=f"DVC stage {stage}")
    if per_dataset:
        parser.add_argument("dataset", help="a name from data/catalog.yaml")
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    datasets = [args.dataset] if per_dataset else []
    try:
        with stage_process("@".join([stage, *datasets]), args.params):
            return run_cli(fn, *datasets, params_path=args.params)
    except InputError as exc:  # another run in the way
        print(f"error: {exc}", file=sys.stderr)
        return 2


def check_dataset_declared(dataset: str, params: Params) -> None:
    if dataset not in params.catalog:
        raise InputError(f"unknown dataset {dataset!r}; known: {sorted(params.catalog)}",
                         file="params.yaml", field="datasets",
                         fix="use a name from data/catalog.yaml, or add an entry for it there")
