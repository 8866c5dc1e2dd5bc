"""V3 sampling throughput: pixelar's batched sampler vs the seed's one-image, one-pixel-at-a-time loop.

Run: python -m benchmarks.bench_sampling   (all measured in this run, on this machine, same weights)

Reports batch 16 (the app's default), 100 (the target: 50x the seed's loop) and 480 (a class of 30 asking
for 16 each), in fp32 and in the precision ``auto`` picks here (bf16 on CPUs with AVX512-BF16 or AMX).
"""
import argparse

import torch

from pixelar import sample
from pixelar.device import PRECISION_NAMES, compute_dtype
from benchmarks.common import best_of, machine, v3_model
from benchmarks.seed_reference import generate_image_v3, seed_v3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 100, 480], help="images per pixelar call (default 16 100 480)")
    parser.add_argument("--seed-images", type=int, default=3, help="images the seed loop generates (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, the fastest counts (default 3)")
    args = parser.parse_args()

    model, source = v3_model()
    baseline = seed_v3()
    baseline.load_state_dict(model.state_dict())  # the same parameter names: the same weights
    baseline.eval()
    torch.manual_seed(0)

    seed_time = best_of(args.repeats, lambda: [generate_image_v3(baseline, d % 10) for d in range(args.seed_images)])
    seed_rate = args.seed_images / seed_time
    auto = PRECISION_NAMES[compute_dtype("auto", torch.device("cpu"))]
    print(f"machine: {machine()}")
    print(f"weights: {source}; precision auto = {auto} here")
    print(f"seed loop (1 image at a time, fp32): {seed_rate:8.1f} images/s")
    for precision in dict.fromkeys(["fp32", auto]):
        for batch in args.batches:
            labels = [d % 10 for d in range(batch)]
            ours = best_of(args.repeats, lambda: sample(model, batch, labels=labels, seed=0, precision=precision))
            rate = batch / ours
            print(f"pixelar.sample batch {batch:4d} {precision}: {rate:8.1f} images/s  "
                  f"({ours * 1000 / 784:.2f} ms per step)  {rate / seed_rate:6.1f}x the seed's loop")


if __name__ == "__main__":
    main()
