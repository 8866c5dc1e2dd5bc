"""Shared bits of the benchmarks: the machine they ran on, a timer, and the V3 weights to use."""
import os
import platform
import time
from pathlib import Path

import torch

from pixelar import build_model, load_checkpoint

SHIPPED_V3 = Path(__file__).resolve().parents[1] / "checkpoints" / "v3.safetensors"


def machine() -> str:
    """The CPU (lscpu's model name), the instructions torch's kernels use and their cap, torch, threads."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    return (f"{cpu}, {os.cpu_count()} cores, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
            f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


def best_of(repeats: int, work) -> float:
    """Fastest wall time of ``repeats`` runs of ``work()`` (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def v3_model():
    """The shipped V3 when present (what users sample), else a fresh one: the timing is the same."""
    if SHIPPED_V3.exists():
        return load_checkpoint(SHIPPED_V3), f"shipped {SHIPPED_V3.name}"
    torch.manual_seed(0)
    return build_model("v3").eval(), "untrained V3 (no shipped checkpoint)"
