"""V3 sampling throughput: pixelar's batched sampler vs the seed's one-image, one-pixel-at-a-time loop.

Run: python -m benchmarks.bench_sampling   (both measured in this run, on this machine, same weights)
"""
import argparse

import torch

from pixelar import sample
from benchmarks.common import best_of, machine, v3_model
from benchmarks.seed_reference import generate_image_v3, seed_v3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100, help="images per pixelar call (default 100)")
    parser.add_argument("--seed-images", type=int, default=3, help="images the seed loop generates (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, the fastest counts (default 3)")
    args = parser.parse_args()

    model, source = v3_model()
    baseline = seed_v3()
    baseline.load_state_dict(model.state_dict())  # the same parameter names: the same weights
    baseline.eval()
    torch.manual_seed(0)

    seed_time = best_of(args.repeats, lambda: [generate_image_v3(baseline, d % 10) for d in range(args.seed_images)])
    ours_time = best_of(args.repeats, lambda: sample(model, args.batch, labels=[d % 10 for d in range(args.batch)], seed=0))
    seed_rate, ours_rate = args.seed_images / seed_time, args.batch / ours_time
    print(f"machine: {machine()}")
    print(f"weights: {source}")
    print(f"seed loop (1 image at a time):  {seed_rate:8.1f} images/s")
    print(f"pixelar.sample (batch {args.batch}):    {ours_rate:8.1f} images/s  ({ours_time * 1000 / 784:.2f} ms per step)")
    print(f"speed-up: {ours_rate / seed_rate:.1f}x")


if __name__ == "__main__":
    main()
