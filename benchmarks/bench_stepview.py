"""How long one step of the step-through view takes to draw on the server: ms per step render.

    python benchmarks/bench_stepview.py [--checkpoint checkpoints/v3.safetensors] [--steps 200]

Times ``pixelar.stepview.render_step`` (all pictures and the caption for one step, from a stored trace) and,
separately, encoding those pictures as PNG the way Gradio sends them to the browser. Without a checkpoint it
uses a small untrained V3: the drawing cost does not depend on the model.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import pixelar
from pixelar import stepview


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model to sample the trace from (default: small untrained V3)")
    parser.add_argument("--steps", type=int, default=200, help="steps to render, spread over 0..784 (default 200)")
    args = parser.parse_args()
    model = pixelar.load_checkpoint(args.checkpoint) if args.checkpoint else pixelar.build_model("v3", hidden=64)
    trace = pixelar.sample(model, 1, labels=7, temperature=1.0, seed=0)
    steps = [round(i * 784 / (args.steps - 1)) for i in range(args.steps)]
    stepview.render_step(trace, 0)  # fonts and colour tables load once

    render_ms, encode_ms = [], []
    for i, step in enumerate(steps):
        start = time.perf_counter()
        view = stepview.render_step(trace, step, temperature=0.5 if i % 2 else None, class_name="7")
        render_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        for picture in (view.canvas, view.bars, view.entropy_map, view.chosen_prob_map):
            picture.save(io.BytesIO(), format="png")
        encode_ms.append((time.perf_counter() - start) * 1000)

    def summary(values):
        values = sorted(values)
        p95 = values[int(0.95 * (len(values) - 1))]
        return f"median {statistics.median(values):.1f} ms, p95 {p95:.1f} ms, max {values[-1]:.1f} ms"

    print(f"step render ({len(steps)} steps): {summary(render_ms)}")
    print(f"PNG encoding of its 4 pictures: {summary(encode_ms)}")
    print(f"total per step: {summary([r + e for r, e in zip(render_ms, encode_ms, strict=True)])}")


if __name__ == "__main__":
    main()
