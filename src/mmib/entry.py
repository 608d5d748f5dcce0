"""What every pipeline entry point (``pipeline/*.py``) does around its work (:func:`mmib.stages.cli.main`).

It ends with the process that launched it (:mod:`mmib.lifeline`), bound
before the heavy imports, and holds the repository's stage lock for its
whole run (:mod:`mmib.stage_lock`). Library calls of the stage functions
(tests, notebooks) do neither.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from mmib import lifeline, stage_lock


@contextlib.contextmanager
def stage_process(stage: str, params_path: str | os.PathLike) -> Iterator[None]:
    """Bind this process to its launcher, then hold the stage lock (an InputError if another run is in the way)."""
    owner = lifeline.bind_to_launcher()
    with stage_lock.exclusive_run(os.environ.get("DVC_STAGE") or stage, params_path, owner):
        yield

