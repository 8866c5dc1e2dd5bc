"""Class fidelity at T = 1 over several seeds: the figure issue 17 asks of V4 (>= 97% averaged over four seeds).

Run: python -m benchmarks.fidelity_seeds [--checkpoint checkpoints/v4.safetensors] [--seeds 0 1 2 3] [--per-class 50]

Each seed samples ``--per-class`` images of every class at T = 1 in fp32, and the project's classifier
(``checkpoints/classifier-<dataset>.safetensors``) reads them; prints each seed's share read as the class asked
for, the mean, and each class's mean over the seeds (the weakest first).
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

import pixelar
from pixelar.fidelity import class_fidelity, load_classifier

from benchmarks.common import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/v4.safetensors")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--per-class", type=int, default=50)
    args = parser.parse_args()
    model = pixelar.load_checkpoint(args.checkpoint)
    dataset = model.metadata.get("dataset", "mnist-5k")
    classifier = load_classifier(Path("checkpoints") / f"classifier-{dataset}.safetensors")
    print(f"machine: {machine()}")
    overall, per_class = [], []
    for seed in args.seeds:
        found = class_fidelity(model, classifier, temperatures=(1.0,), per_class=args.per_class, seed=seed)
        overall.append(found.overall[1.0])
        per_class.append(found.per_class[1.0])
        print(f"seed {seed}: {found.overall[1.0]:.1%} read as the class asked for ({args.per_class} per class)")
    names = model.metadata.get("class_names") or [str(c) for c in range(model.config.num_classes)]
    mean_class = np.mean(per_class, axis=0)
    weakest = ", ".join(f"{names[c]} {mean_class[c]:.1%}" for c in np.argsort(mean_class)[:3])
    print(f"{args.checkpoint}: mean {statistics.mean(overall):.1%} over seeds {args.seeds}; weakest: {weakest}")


if __name__ == "__main__":
    main()
