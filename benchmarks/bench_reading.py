"""One drawn digit read by every shipped digit model, as the Draw tab reads it (``pixelar.reading.read``): each
model's per-pixel score and, for the class-conditional ones, all ten classes in one batched pass; each model on
one thread, then all of them side by side on one worker per core, as the tab does.

Run: OMP_NUM_THREADS=1 python -m benchmarks.bench_reading   (target: at most 1 s for all of them on a 2-core CPU)
"""
import argparse
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import torch

import pixelar
from benchmarks.common import best_of, machine
from pixelar.reading import read

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
DIGIT_MODELS = ("v1", "v2", "v3", "v4", "v3-context56")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per model; the fastest counts (default 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    held_out = pixelar.load_dataset("mnist-5k").held_out
    grey, label = held_out.images[7].numpy(), int(held_out.labels[7])
    print(machine())
    total, loaded = 0.0, []
    for name in DIGIT_MODELS:
        path = CHECKPOINTS / f"{name}.safetensors"
        if not path.exists():
            continue
        model = pixelar.load_checkpoint(path)

        loaded.append(model)
        seconds = best_of(args.repeats, partial(read, model, grey, label))
        total += seconds
        print(f"{name:14} {seconds * 1000:7.0f} ms" + ("  (score + 10-class posterior)" if model.conditional else "  (score)"))
    print(f"{'all, one after another':24} {total * 1000:7.0f} ms")
    workers = os.cpu_count() or 1

    def side_by_side():
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda model: read(model, grey, label), loaded))

    print(f"{f'all, {workers} workers':24} {best_of(args.repeats, side_by_side) * 1000:7.0f} ms   target ≤ 1000 ms")


if __name__ == "__main__":
    main()
