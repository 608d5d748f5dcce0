"""Seeds, devices and threads: what makes a run reproducible."""

from __future__ import annotations

import random

import numpy as np
import torch

from mmib.errors import InputError


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for batch order.

    On the CPU the same seed gives bit-identical runs (the test suite checks
    it). CUDA kernels are not all deterministic, so GPU runs may differ in the
    last digits.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("CUDA was requested but torch sees no GPU", field="device",
                         fix="set device: auto or device: cpu in params.yaml")
    if name not in ("cpu", "cuda"):
        raise InputError(f"unknown device {name!r}", field="device", fix="use auto, cpu or cuda")
    return torch.device(name)
