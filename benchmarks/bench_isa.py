"""One 128 x 1024 x 1024 layer, one thread, under each ``ONEDNN_MAX_CPU_ISA`` cap: how this CPU stands in for others.

Run: python -m benchmarks.bench_isa

oneDNN's ``ONEDNN_MAX_CPU_ISA`` caps the instructions torch's CPU kernels use, so one machine can time the paths
of older CPUs (a cap above what the CPU has changes nothing: it only caps down). Each cap runs in its own
process, since oneDNN reads it once. Prints a Markdown table: the cap, what it stands for, the layer's time in
fp32, bf16 and int8 (``pixelar``'s own paths, as ``benchmarks.bench_sampling`` times them), and the fastest.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAPS = {
    "ALL": "this CPU, uncapped",
    "AVX512_CORE_AMX": "an Intel Xeon with AMX",
    "AVX512_CORE_BF16": "AVX-512 with bf16 (an AMD EPYC Zen 4)",
    "AVX512_CORE_VNNI": "AVX-512 without bf16",
    "AVX2": "an older laptop or desktop",
}
ROWS, WIDTH = 128, 1024

MEASURE = f"""
import json, torch
from benchmarks.bench_sampling import matmul_ceiling
from pixelar.layers import int8_available
torch.set_num_threads(1)
paths = ["fp32", "bf16"] + (["int8"] if int8_available(torch.device("cpu")) else [])
flop = 2 * {ROWS} * {WIDTH} * {WIDTH}
print(json.dumps({{p: flop / matmul_ceiling(p, {ROWS}, {WIDTH}) * 1e3 for p in paths}}))
"""


def measure(cap: str) -> dict:
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": cap, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", MEASURE], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    from benchmarks.common import machine

    print(f"machine: {machine()}")
    print(f"one {ROWS} x {WIDTH} x {WIDTH} layer, one thread, best of 5, ms:\n")
    print("| `ONEDNN_MAX_CPU_ISA` | stands for | fp32 | bf16 | int8 | fastest |")
    print("|---|---|---|---|---|---|")
    for cap, stands_for in CAPS.items():
        ms = measure(cap)
        times = {p: ms[p] for p in ("fp32", "bf16", "int8") if p in ms}
        cells = " | ".join(f"{times[p]:.2f}" if p in times else "–" for p in ("fp32", "bf16", "int8"))
        print(f"| `{cap}` | {stands_for} | {cells} | {min(times, key=times.get)} |")


if __name__ == "__main__":
    main()
