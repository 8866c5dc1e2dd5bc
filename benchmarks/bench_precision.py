"""What bf16 costs in accuracy: held-out NLL in bf16 vs fp32 for the shipped models, V3's class fidelity at T=1 in
both precisions, and the share of sampled tokens that differ for the same seed.

Run: python -m benchmarks.bench_precision   (figures, not timings: any machine gives the same story)
"""
import argparse
from pathlib import Path

import numpy as np

from pixelar import evaluate, load_checkpoint, load_dataset, sample
from pixelar.fidelity import class_fidelity, load_classifier
from benchmarks.common import machine

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["v1", "v2", "v3", "v4"], help="shipped checkpoints to compare (default v1 v2 v3 v4)")
    parser.add_argument("--per-class", type=int, default=50, help="fidelity samples per class (default 50)")
    parser.add_argument("--samples", type=int, default=100, help="images for the token-difference figure (default 100)")
    args = parser.parse_args()

    data = load_dataset("mnist-5k")
    judge = load_classifier(CHECKPOINTS / "classifier-mnist-5k.safetensors")
    print(f"machine: {machine()}")
    print(f"held-out NLL on all {len(data.held_out)} held-out images (bits/pixel); same seed, {args.samples} images, T=1:")
    print(f"{'model':6} {'fp32':>8} {'bf16':>8} {'diff':>8}   tokens that differ   fidelity fp32 / bf16")
    for name in args.models:
        path = CHECKPOINTS / f"{name}.safetensors"
        if not path.exists():
            continue
        model = load_checkpoint(path)
        fp32, bf16 = (evaluate(model, data, precision=p) for p in ("fp32", "bf16"))
        labels = np.arange(args.samples) % 10
        a, b = (sample(model, args.samples, labels=labels, seed=0, precision=p).tokens for p in ("fp32", "bf16"))
        differ = (a != b).mean()
        first = np.where((a != b).any(0))[0]
        fidelity = ""
        if model.conditional:
            f = [class_fidelity(model, judge, temperatures=(1.0,), per_class=args.per_class, seed=0, precision=p).overall[1.0]
                 for p in ("fp32", "bf16")]
            fidelity = f"{f[0]:.1%} / {f[1]:.1%}"
        print(f"{name:6} {fp32:8.4f} {bf16:8.4f} {bf16 - fp32:+8.4f}   {differ:6.1%} (first at step {first[0] if len(first) else '-'})   {fidelity}")


if __name__ == "__main__":
    main()
