"""Model state files (``models/<ds>/<stage>/seed<k>.pt``): safe to load, reproducible to the byte.

Safe: a state holds only tensors and plain Python values (dict, list,
tuple, str, int, float, bool, None), checked before writing, and is read
with ``torch.load(weights_only=True)``, whose unpickler builds nothing else.
A state file pulled from a shared DVC remote or someone else's experiment
therefore cannot run code when it is loaded; anything else in it is refused
with an :class:`InputError`.

Reproducible: ``torch.save`` names the records inside its zip archive after
the file it writes to, and ``atomic_path`` writes to a random temporary
name, so the state is serialised in memory and the bytes written as they
are. Identical training on the CPU thus writes identical files, which DVC
sees as unchanged (no cascade into the stages after it). Estimators keep
wall-clock timings out of their states for the same reason
(:meth:`mmib.methods.base.EstimatorBase.saved_history`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from mmib.atomic_io import write_bytes
from mmib.errors import InputError

PLAIN = (str, int, float, bool, type(None))


def check_plain(obj: Any, where: str = "state") -> None:
    """Raise TypeError naming the first value that is neither a tensor nor a plain value.

    Exact types: a NumPy scalar is a ``float`` subclass but pickles as a
    NumPy object, which ``weights_only`` loading refuses.
    """
    import torch

    if type(obj) in PLAIN or type(obj) is torch.Tensor:
        return
    if type(obj) is dict:
        for key, value in obj.items():
            if type(key) not in PLAIN:
                raise TypeError(f"{where}: key {key!r} of type {type(key).__name__} is not a plain value")
            check_plain(value, f"{where}.{key}")
        return
    if type(obj) in (list, tuple):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: a {type(obj).__module__}.{type(obj).__name__} is not a tensor or a "
                    "plain value; convert it (tensor, list, float, ...) before saving")


def state_bytes(state: dict[str, Any]) -> bytes:
    """The serialised state (checked); the same state always gives the same bytes."""
    import torch

    check_plain(state)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def save_state(target: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a state atomically (complete or not at all)."""
    write_bytes(target, state_bytes(state))


def load_state(path: str | os.PathLike, rerun: str) -> dict[str, Any]:
    """Read a state with ``weights_only=True``; ``rerun`` is the stage that rewrites it (for messages)."""
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError("model state not found", file=str(path), fix=f"run `dvc repro {rerun}` first")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, foreign, or holding objects we refuse to build
        raise InputError(f"cannot read the model state safely ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); states hold only tensors "
                         "and plain values and are loaded with weights_only=True", file=str(path),
                         fix=f"re-create it from a trusted run: `dvc repro -f {rerun}`") from None
    if not isinstance(state, dict):
        raise InputError(f"not a model state (a {type(state).__name__})", file=str(path),
                         fix=f"re-create it: `dvc repro -f {rerun}`")
    return state
