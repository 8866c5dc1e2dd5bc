"""Which torch device to run on (CUDA, else Apple's MPS, else the CPU) and in what matmul precision."""
from __future__ import annotations

import contextlib
import functools
import subprocess
import sys

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


PRECISIONS = ("auto", "fp32", "bf16", "int8")  # int8 is a sampling and evaluation path, not a training one
TRAINING_PRECISIONS = ("auto", "fp32", "bf16")
PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.int8: "int8"}  # a compute dtype as the option names it
PRECISION_DTYPES = {name: dtype for dtype, name in PRECISION_NAMES.items()}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX512-BF16 or AMX), read from the OS, not assumed."""
    if sys.platform == "linux":
        try:
            flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags
    if sys.platform == "darwin":
        found = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True)
        return found.stdout.strip() == "1"
    return False


def bf16_is_native(device: torch.device) -> bool:
    """bf16 matmuls run natively here: a CUDA device with bf16, or a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The training matmul precision for ``precision`` ("auto": bf16 where native, else fp32) on ``device``.
    (Sampling chooses its path by timing instead: ``pixelar.planner``.)"""
    if precision not in TRAINING_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(TRAINING_PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and device.type not in ("cpu", "cuda"):
        raise ValueError(f"bf16 needs a CPU or CUDA device, not {device.type}")
    if precision == "bf16" or (precision == "auto" and bf16_is_native(device)):
        return torch.bfloat16
    return torch.float32


def autocast(dtype: torch.dtype, device: torch.device):
    """A context that runs matmuls in ``dtype`` (bf16) on ``device``; a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
