"""Which torch device to run on: CUDA, else Apple's MPS, else the CPU, unless the user names one."""
from __future__ import annotations

import contextlib
import functools

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


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 matmuls and convolutions run in hardware here: CUDA that supports it, or a CPU with
    AVX512-BF16 or AMX (read from ``/proc/cpuinfo``; elsewhere, e.g. macOS, assumed not)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return frozenset(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return frozenset()


def autocast_context(device: torch.device, enabled: bool = True):
    """bf16 autocast on ``device`` where it is native (and ``enabled``), else a do-nothing context."""
    if enabled and bf16_is_native(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
