"""What the Train tab's presets and shapes cost on this machine: the app's own speed measurement for each.

Run: OMP_NUM_THREADS=1 python -m benchmarks.bench_train_presets   (about a minute; 20 s per measurement)

For each model and shape, the training speed is measured as the app measures it (``demo.training.Throughput``,
a short run on mnist-5k with one thread), and each preset's expected time is printed with the parameter count.
"""
import argparse
import tempfile

from benchmarks.common import machine
from demo import training
from demo.data import DataSets
from demo.train_tab import parameters
from demo.training import Shape, Throughput, budgets, format_seconds, samples_word


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each speed measurement (default 20)")
    args = parser.parse_args()
    training.MEASURE_SECONDS = args.seconds
    throughput = Throughput(DataSets(tempfile.mkdtemp(prefix="pixelar-bench-")))
    shapes = [("v3", Shape.check("v3", c, 16)) for c in training.CONTEXTS] + [("v4", Shape.check("v4", None, 16))]
    print(f"machine: {machine()}\n")
    print("| model | shape | parameters | speed | Quick | Standard | Long (V1-V3: the seed's recipe) |")
    print("|---|---|---|---|---|---|---|")
    for kind, shape in shapes:
        rate = throughput.rate(kind, shape, server_busy=False)
        presets = [f"{b.steps * b.batch_size:,} {samples_word(kind)}: {format_seconds(b.steps * b.batch_size / rate)}"
                   for b in budgets(kind).values()]
        print(f"| {kind.upper()} | {shape.describe(kind)} | {parameters(kind, shape):,} | "
              f"{rate:,.0f} {samples_word(kind)}/s | " + " | ".join(presets) + " |", flush=True)


if __name__ == "__main__":
    main()
