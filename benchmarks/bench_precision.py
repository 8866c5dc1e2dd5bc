"""What bf16 and int8 cost in accuracy: held-out NLL in each path vs fp32 for the shipped models, class fidelity at
T=1 in each, and the share of sampled tokens that differ from fp32's for the same seed.

Run: python -m benchmarks.bench_precision [--precisions int8]   (figures, not timings: any machine gives the same
story, up to rounding). Bounds for ``auto`` to be allowed a path: NLL within 0.005 bits of fp32, fidelity within
2 points. int8 NLL runs the sampler's own steps (the MLPs' only int8 arithmetic); bf16 NLL runs bf16 autocast.
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from pixelar import evaluate, load_checkpoint, load_dataset, planner, sample
from pixelar.fidelity import class_fidelity, load_classifier
from benchmarks.common import machine

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
NLL_BOUND, FIDELITY_BOUND = 0.005, 0.02


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["v1", "v2", "v3", "v4"], help="shipped checkpoints to compare (default v1 v2 v3 v4)")
    parser.add_argument("--precisions", nargs="+", default=["bf16", "int8"], help="paths to compare with fp32 (default bf16 int8)")
    parser.add_argument("--per-class", type=int, default=50, help="fidelity samples per class (default 50)")
    parser.add_argument("--samples", type=int, default=100, help="images for the token-difference figure (default 100)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    data = load_dataset("mnist-5k")
    judge = load_classifier(CHECKPOINTS / "classifier-mnist-5k.safetensors")
    labels = np.arange(args.samples) % 10
    print(f"machine: {machine()}")
    print(f"held-out NLL on all {len(data.held_out)} held-out images (bits/pixel); same seed, {args.samples} images, T=1:")
    print(f"{'model':6} {'path':5} {'NLL':>8} {'diff':>8}   tokens that differ from fp32   fidelity   within bounds")
    for name in args.models:
        path = CHECKPOINTS / f"{name}.safetensors"
        if not path.exists():
            continue
        model = load_checkpoint(path)
        usable = planner.paths(model, torch.device("cpu"))
        fidelity = lambda p: class_fidelity(model, judge, temperatures=(1.0,), per_class=args.per_class, seed=0, precision=p).overall[1.0]  # noqa: E731
        nll32 = evaluate(model, data, precision="fp32")
        tokens32 = sample(model, args.samples, labels=labels, seed=0, precision="fp32").tokens
        fid32 = fidelity("fp32") if model.conditional else None
        print(f"{name:6} {'fp32':5} {nll32:8.4f}" + (f"{'':42}{fid32:.1%}" if fid32 is not None else ""))
        for precision in [p for p in args.precisions if p in usable]:
            nll = evaluate(model, data, precision=precision)
            tokens = sample(model, args.samples, labels=labels, seed=0, precision=precision).tokens
            differ = tokens != tokens32
            first = np.where(differ.any(0))[0]
            fid = fidelity(precision) if model.conditional else None
            ok = abs(nll - nll32) <= NLL_BOUND and (fid is None or abs(fid - fid32) <= FIDELITY_BOUND)
            print(f"{name:6} {precision:5} {nll:8.4f} {nll - nll32:+8.4f}   {differ.mean():6.1%} (first at step "
                  f"{first[0] if len(first) else '-':>3})        {'' if fid is None else f'{fid:.1%}':8}   {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
