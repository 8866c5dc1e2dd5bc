"""V3 training throughput at batch 512: pixelar's loop (fp32 and auto precision) vs the seed's loop, and the seed's data-preparation pass.

Run: python -m benchmarks.bench_training   (both measured in this run, on this machine)
"""
import argparse
import time

import torch

from pixelar import TrainConfig, build_model, load_dataset, train
from pixelar.device import PRECISION_NAMES, compute_dtype
from benchmarks.common import best_of, machine
from benchmarks.seed_reference import create_training_data_v3, seed_v3, train_steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps timed per run (default 40)")
    parser.add_argument("--prep-images", type=int, default=300, help="images the seed's data preparation processes (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, the fastest counts (default 3)")
    args = parser.parse_args()

    dataset = load_dataset("mnist-5k")
    tokens, labels = dataset.train.tokens(16), dataset.train.labels

    start = time.perf_counter()
    seed_data = create_training_data_v3(tokens[: args.prep_images], labels, 28, 16, max_samples=10**9)
    prep_per_image = (time.perf_counter() - start) / args.prep_images

    torch.manual_seed(0)
    seed_model = seed_v3()
    seed_time = best_of(args.repeats, lambda: train_steps(seed_model, seed_data, args.steps))
    ours_rates = {}
    for precision in ("fp32", "auto"):
        config = TrainConfig(steps=args.steps, batch_size=512, eval_every=0, eval_images=1, report_seconds=1e9, precision=precision)
        ours_model = build_model("v3")
        ours_rates[precision] = args.steps * 512 / best_of(args.repeats, lambda: train(ours_model, dataset, config))

    seed_rate = args.steps * 512 / seed_time
    print(f"machine: {machine()}")
    print(f"seed data preparation: {prep_per_image * 1000:.1f} ms per image "
          f"(a separate pass: {prep_per_image * 60000 / 60:.0f} min for MNIST's 60,000, {prep_per_image * 4500:.0f} s for mnist-5k); "
          "pixelar: none, contexts are gathered per batch")
    auto = PRECISION_NAMES[compute_dtype("auto", torch.device("cpu"))]
    print(f"seed training loop (batch 512, fp32):  {seed_rate:9,.0f} samples/s")
    for precision, rate in ours_rates.items():
        name = f"auto = {auto}" if precision == "auto" else precision
        print(f"pixelar.train (batch 512, {name}):{' ' * max(0, 12 - len(name))}{rate:9,.0f} samples/s  {rate / seed_rate:.2f}x the seed's loop")


if __name__ == "__main__":
    main()
