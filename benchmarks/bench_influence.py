"""How long one "where it looked" map takes in the app: ms per ``where_it_looked`` call, per shipped model.

    OMP_NUM_THREADS=1 python -m benchmarks.bench_influence [--steps 40]

Calls the step player's server function (``demo.where_it_looked``) as the page does, for steps spread over
the image: ``pixelar.influence`` (one forward and backward pass over one image, on one thread) plus checking
the ask and encoding the map.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pixelar
from demo.services import Services

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="steps per model, spread over 1..783 (default 40)")
    args = parser.parse_args()
    steps = [1 + round(i * 782 / (args.steps - 1)) for i in range(args.steps)]
    app = Services()  # as app.build_app builds them
    register, where_it_looked = app.register, app.where_it_looked
    for name in ("v1", "v2", "v3", "v4"):
        model = pixelar.load_checkpoint(CHECKPOINTS / f"{name}.safetensors")
        trace = pixelar.sample(model, 1, labels=7, seed=0)
        key = register(model, [trace.tokens[0]], 7)
        where_it_looked({"id": key, "panel": 0, "step": 400})  # first call: lazy set-up
        ms = []
        for step in steps:
            start = time.perf_counter()
            assert "map" in where_it_looked({"id": key, "panel": 0, "step": step})
            ms.append((time.perf_counter() - start) * 1000)
        print(f"{name}: median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms ({len(steps)} steps)")


if __name__ == "__main__":
    main()
