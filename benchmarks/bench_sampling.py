"""V3 sampling throughput: pixelar's batched sampler vs the seed's one-image, one-pixel-at-a-time loop, per path.

Run: python -m benchmarks.bench_sampling   (all measured in this run, on this machine, same weights, one thread)

Prints the machine (CPU model, the instruction set torch uses, the ONEDNN_MAX_CPU_ISA cap), then:
- the best matmul rate of each precision here (a 512 x 1024 x 1024 matmul), the ceiling of each path;
- the seed's loop; V3 at batch 100 (the target: 50x the seed's loop) and 480 (a class of 30 asking for 16 each)
  in every path at the tile ``pixelar.planner`` measures for it, with its share of that path's matmul ceiling;
- what ``auto`` picks, a class's merged run of 480 V3 digits on one worker and on two, one user's 16 V3 digits
  under it, and 16 V4 digits against 16 V3 (target: at most 1.5x).
On a shared machine compare the ratios, which are measured in the same run, not the absolute figures.
"""
import argparse
import time

import torch
import torch.nn.functional as F

from pixelar import planner, sample
from pixelar.sampling import Request, sample_many
from pixelar.layers import Int8Linear
from benchmarks.bench_v4 import v4_model
from benchmarks.common import best_of, machine, v3_model
from benchmarks.seed_reference import generate_image_v3, seed_v3


def matmul_ceiling(precision: str, rows: int = 512, width: int = 1024) -> float:
    """Best multiply-adds per second x2 (FLOP/s) of one rows x width x width linear layer in ``precision`` here."""
    layer = torch.nn.Linear(width, width)
    x = torch.rand(rows, width)
    if precision == "int8":
        int8 = Int8Linear(layer, rows)
        run = lambda: int8(x)  # noqa: E731  (quantising the rows is part of the path)
    else:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        w, b, xd = layer.weight.detach().to(dtype), layer.bias.detach().to(dtype), x.to(dtype)
        run = lambda: F.linear(xd, w, b)  # noqa: E731
    run()
    return 2 * rows * width * width / best_of(5, run)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 480], help="images per pixelar call (default 100 480)")
    parser.add_argument("--seed-images", type=int, default=3, help="images the seed loop generates (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, the fastest counts (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    model, source = v3_model()
    baseline = seed_v3()
    baseline.load_state_dict(model.state_dict())  # the same parameter names: the same weights
    baseline.eval()
    torch.manual_seed(0)
    print(f"machine: {machine()}")
    print(f"weights: {source}")
    paths = planner.paths(model, torch.device("cpu"))
    ceilings = {p: matmul_ceiling(p) for p in paths}
    print("best matmul rate here: " + ", ".join(f"{p} {rate / 1e9:.1f} GFLOP/s" for p, rate in ceilings.items()))

    seed_time = best_of(args.repeats, lambda: [generate_image_v3(baseline, d % 10) for d in range(args.seed_images)])
    seed_rate = args.seed_images / seed_time
    print(f"seed loop (1 image at a time, fp32): {seed_rate:8.2f} images/s")
    hidden = model.config.hidden
    flops_per_image_step = 2 * hidden * (hidden + model.k)  # fc2 and fc_out; fc1 is a table lookup
    for precision in paths:
        for batch in args.batches:
            tile = planner.plan(model, precision).tile_for(batch)
            labels = [d % 10 for d in range(batch)]
            took = best_of(args.repeats, lambda: sample(model, batch, labels=labels, seed=0, precision=precision))
            rate = batch / took
            share = rate * 784 * flops_per_image_step / ceilings[precision]
            print(f"V3 batch {batch:4d} {precision} (tile {tile:3d}): {rate:8.1f} images/s  {rate / seed_rate:6.1f}x the "
                  f"seed's loop  ({share:.0%} of the {precision} matmul rate)")

    chosen = planner.plan(model)
    print(f"auto picks for V3: {chosen.describe()}")
    requests = [Request.of(model, n=16, labels=d % 10, seed=d) for d in range(30)]
    for workers in (1, 2):
        took = best_of(1, lambda: sample_many(model, requests, workers=workers))
        print(f"a class of 30 x 16 V3 digits under auto, one run on {workers} worker(s) of one thread: {took:.2f} s")
    v4, v4_source = v4_model()
    labels = [d % 10 for d in range(16)]
    times = {"v3": float("inf"), "v4": float("inf")}
    for _ in range(args.repeats):  # in turns, so that a busy moment on a shared machine hits both
        for name, m in (("v3", model), ("v4", v4)):
            start = time.perf_counter()
            used = sample(m, 16, labels=labels, seed=0).precision
            times[name] = min(times[name], time.perf_counter() - start)
            print(f"  16 {name} digits, auto ({used}, tile {planner.plan(m).tile_for(16)}): {time.perf_counter() - start:.3f} s")
    print(f"one user, 16 V3 digits under auto, one thread: {times['v3']:.3f} s (best of {args.repeats})")
    print(f"16 V4 / 16 V3 under auto ({v4_source}): {times['v4'] / times['v3']:.2f}x  (target: at most 1.5x)")


if __name__ == "__main__":
    main()
