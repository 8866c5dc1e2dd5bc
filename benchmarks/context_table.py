"""How much does context buy? V3 at several context lengths, and V4, trained on one fixed budget.

Run: OMP_NUM_THREADS=1 python -m benchmarks.context_table   (about 20 minutes on one CPU thread)

Each row is one ``python -m pixelar train`` command (printed), scored on all 500 held-out images of mnist-5k.
The V3 rows share the step budget; V4, which trains on whole images, gets the wall time of the widest V3 run.
Checkpoints go to ``--out-dir`` (default ``runs/context``, ignored by git).
"""
import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from pixelar import build_model, read_metadata
from benchmarks.common import machine


def train(out_dir: Path, name: str, extra: list[str]) -> tuple[str, dict, float]:
    out = out_dir / f"{name}.safetensors"
    command = [sys.executable, "-m", "pixelar", "train", "--dataset", "mnist-5k", "--schedule", "cosine", "--seed", "0",
               "--eval-every", "1000", *extra, "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return shlex.join(["python", *command[1:]]), read_metadata(out), time.perf_counter() - start


def parameters(meta: dict) -> int:
    model = build_model(meta["model"], **meta["config"])
    return sum(p.numel() for p in model.parameters())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[1, 7, 28, 56, 84, 112])
    parser.add_argument("--steps", type=int, default=6000, help="V3 steps of 512 (image, pixel) pairs (default 6000)")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/context"))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    print(f"machine: {machine()}")
    rows, widest_seconds = [], 0.0
    for context in args.contexts:
        command, meta, seconds = train(args.out_dir, f"v3-context{context}",
                                       ["--model", "v3", "--context", str(context), "--steps", str(args.steps)])
        widest_seconds = seconds
        rows.append((f"V3, context {context}", meta, seconds, command))
        print(rows[-1][0], meta["held_out_nll"], f"{seconds:.0f} s", flush=True)
    minutes = f"{widest_seconds / 60:.1f}"
    command, meta, seconds = train(args.out_dir, "v4", ["--model", "v4", "--steps", "100000", "--minutes", minutes])
    rows.append(("V4, every earlier pixel", meta, seconds, command))

    print("\n| model | parameters | budget | time | held-out NLL (bits/pixel) |\n|---|---|---|---|---|")
    for name, meta, seconds, _ in rows:
        budget = f"{meta['steps']:,} steps × {meta['batch_size']} {meta['batch_unit']}"
        print(f"| {name} | {parameters(meta):,} | {budget} | {seconds:.0f} s | {meta['held_out_nll']:.4f} |")
    print()
    for name, _, _, command in rows:
        print(f"{name}: {command}")


if __name__ == "__main__":
    main()
