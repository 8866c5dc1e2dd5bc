"""Which torch device to run on: CUDA, else Apple's MPS, else the CPU, unless the user names one."""
from __future__ import annotations

import torch


def pick_device(name: str | None = None) -> torch.device:
    """``None`` or ``"auto"`` picks the best available; otherwise the named device, checked to exist."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise ValueError(f"device {name!r} is not available here; use auto, cpu" + (", cuda" if available["cuda"] else ""))
    return device
