"""V4 sampling time against V3's: the same number of images, the same sampler, measured in this run.

Run: python -m benchmarks.bench_v4   (target: V4 takes at most 2x V3's time for 16 images on a 2-core CPU)

Reports fp32 and ``auto``, what the app uses: bf16 for V3 on CPUs with AVX512-BF16 or AMX, fp32 for V4 (whose steps
bf16 does not speed up). The two models are timed in turns, so that a busy moment on a shared machine hits both.
"""
import argparse
from functools import partial
from pathlib import Path

import torch

from pixelar import build_model, load_checkpoint, sample
from benchmarks.common import best_of, machine, v3_model

SHIPPED_V4 = Path(__file__).resolve().parents[1] / "checkpoints" / "v4.safetensors"


def v4_model():
    """The shipped V4 when present, else a fresh one of the default shape: the timing is the same."""
    if SHIPPED_V4.exists():
        return load_checkpoint(SHIPPED_V4), f"shipped {SHIPPED_V4.name}"
    torch.manual_seed(0)
    return build_model("v4").eval(), "untrained V4 (no shipped checkpoint)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="images per call (default 16)")
    parser.add_argument("--repeats", type=int, default=5, help="turns of each, the fastest counts (default 5)")
    args = parser.parse_args()

    labels = [d % 10 for d in range(args.batch)]
    (v3, v3_source), (v4, v4_source) = v3_model(), v4_model()
    print(f"machine: {machine()}")
    print(f"weights: {v3_source}, {v4_source}")
    for precision in ("fp32", "auto"):
        times = {"v3": float("inf"), "v4": float("inf")}
        used = {}
        for _ in range(args.repeats):
            for name, model in (("v3", v3), ("v4", v4)):
                run = partial(sample, model, args.batch, labels=labels, seed=0, precision=precision)
                times[name] = min(times[name], best_of(1, run))
                used[name] = run().precision
        for name, seconds in times.items():
            print(f"{name} {precision} ({used[name]}): {args.batch} images in {seconds:.3f} s  "
                  f"({seconds * 1000 / 784:.2f} ms per step)")
        print(f"V4 / V3 time, {precision}: {times['v4'] / times['v3']:.2f}x  (target: at most 2x)")


if __name__ == "__main__":
    main()
