"""Memory per training sample, per model kind: the figures behind each model's ``train_bytes_per_sample``.

Each kind trains 2 steps at two batch sizes, each in a fresh process; the slope of peak RSS (``ru_maxrss``) over
the batch size is the memory one more sample costs (activations, their gradients, the loss). Run:
``python -m benchmarks.train_memory``.
"""
import json
import subprocess
import sys

from benchmarks.common import machine

BATCHES = {"v1": (512, 8192), "v2": (512, 8192), "v3": (512, 8192), "v4": (8, 40)}  # the app's presets and far above
CHILD = """
import json, resource, sys, torch
import pixelar
from pixelar.data import load_dataset
kind, batch = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
data = load_dataset("mnist-5k")
config = pixelar.TrainConfig(steps=2, batch_size=batch, eval_every=0, eval_images=1)
pixelar.train(pixelar.build_model(kind), data, config)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
"""


def peak_bytes(kind: str, batch: int) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(batch)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print(machine())
    for kind, (low, high) in BATCHES.items():
        a, b = peak_bytes(kind, low), peak_bytes(kind, high)
        per_sample = (b - a) / (high - low)
        print(f"{kind}: peak {a / 2**20:,.0f} MiB at batch {low}, {b / 2**20:,.0f} MiB at batch {high}: "
              f"{per_sample / 1e3:,.1f} kB per sample")


if __name__ == "__main__":
    main()
