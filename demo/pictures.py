"""Pictures only the app shows: sample grids sized for a projector, the models side by side, the temperature
strip, completions, surprise maps and the training-loss figure. They are assembled from the core's drawing
primitives (``pixelar.render``); no tensor math here.

Colour convention on every heat map: dark is unremarkable, bright is notable (entropy, surprise).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator
from PIL import Image, ImageDraw

import pixelar
from pixelar import render
from pixelar.experiments import Surprise
from pixelar.models import IMAGE_SIZE
from pixelar.render import SURPRISE_MAX_BITS, with_color_bar

GRID_WIDTH = 672  # screen pixels a grid is drawn at (then shown with nearest-neighbour scaling)
CUT = (255, 60, 60)  # where the real rows of a completion end
LOSS_TICKS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.5, 2, 3, 4, 6, 8)  # bits per pixel, on a log axis (K 2 to 256)


def _scale(columns: int, width: int = GRID_WIDTH) -> int:
    """Screen pixels per image pixel for a grid ``columns`` images wide."""
    return max(2, min(12, width // (columns * IMAGE_SIZE)))


def grid(trace: pixelar.Trace, names: list[str] | None = None) -> Image.Image:
    """The samples as one grid, drawn large; ``names``: caption each with its class name."""
    columns = math.ceil(math.sqrt(len(trace)))
    captions = [names[label] for label in trace.labels] if names else None
    return render.sample_grid(trace.images(), columns, _scale(columns), captions)


def entropy_sheet(trace: pixelar.Trace) -> Image.Image:
    """Each sample's entropy map in the grid's layout, with one colour bar (bright: the model was unsure)."""
    columns = math.ceil(math.sqrt(len(trace)))
    scale = _scale(columns)
    maps = render.tile([render.entropy_heatmap(trace, i, scale=scale) for i in range(len(trace))], columns)
    return with_color_bar(maps, 0.0, math.log2(trace.k), "magma", "entropy of each step, bits")


def compare_sheet(traces: Mapping[str, pixelar.Trace], width: int = 1200) -> Image.Image:
    """One grid per model, side by side, each captioned with the model's name."""
    count = max(len(t) for t in traces.values())
    columns = math.ceil(math.sqrt(count))
    scale = max(2, min(10, (width // len(traces)) // (columns * IMAGE_SIZE + 8)))
    grids = [render.sample_grid(t.images(), columns, scale) for t in traces.values()]
    return render.tile(grids, columns=len(grids), pad=12, captions=[kind.upper() for kind in traces])


def temperature_row(traces: list[pixelar.Trace], scale: int = 10) -> Image.Image:
    """One image per trace (the same dice at each temperature) in a row, each captioned with its temperature."""
    return render.tile([render.grey_image(t.images()[0], scale) for t in traces], columns=len(traces),
                       captions=[f"T = {t.temperature:g}" for t in traces])


def _with_cut(picture: Image.Image, rows: int, scale: int) -> Image.Image:
    if 0 < rows < IMAGE_SIZE:
        y = rows * scale
        ImageDraw.Draw(picture).line((0, y, picture.width, y), fill=CUT, width=max(2, scale // 4))
    return picture


def completion_sheet(real: np.ndarray, completions: pixelar.Trace, keep_rows: int, captions: list[str],
                     scale: int = 8) -> Image.Image:
    """The real image (28, 28) in [0, 1], then each completion, in one row; a red line where the kept rows end.
    ``captions``: one for the real image, then one per completion."""
    shown = [render.grey_image(real, scale)] + [render.grey_image(image, scale) for image in completions.images()]
    return render.tile([_with_cut(p, keep_rows, scale) for p in shown], columns=len(shown), captions=captions)


def surprise_sheet(real: np.ndarray, surprises: dict[str, Surprise], scale: int = 8,
                   first_caption: str = "the real image") -> Image.Image:
    """The real image, then each model's per-pixel surprise (bits) on one shared scale 0..SURPRISE_MAX_BITS,
    captioned with its total, and one colour bar for all."""
    shown, captions = [render.grey_image(real, scale)], [first_caption]
    for name, s in surprises.items():
        shown.append(render.heatmap(s.nll_map, 0.0, SURPRISE_MAX_BITS, "inferno", scale))
        captions.append(f"{name}: {s.bits_per_pixel:.2f} bits/px, K {s.k}")
    sheet = render.tile(shown, columns=len(shown), captions=captions)
    label = f"surprise of each pixel, bits ({SURPRISE_MAX_BITS:g} or more: brightest)"
    return with_color_bar(sheet, 0.0, SURPRISE_MAX_BITS, "inferno", label)


def loss_curves(events: Iterable, start_held_out: float | None = None) -> dict[str, list]:
    """Training events as columns: ``step``, ``bits per pixel`` and ``curve`` ("training" or "held-out").

    Accepts ``TrainEvent``s (or anything with ``step``, ``loss`` and ``held_out_nll``); events without a
    value for a curve add no point to it. ``start_held_out``: the untrained model's held-out loss, at step 0.
    """
    columns: dict[str, list] = {"step": [], "bits per pixel": [], "curve": []}
    if start_held_out is not None:
        columns["step"].append(0)
        columns["bits per pixel"].append(float(start_held_out))
        columns["curve"].append("held-out")
    for event in events:
        for curve, value in (("training", event.loss), ("held-out", event.held_out_nll)):
            if value is not None and math.isfinite(value):
                columns["step"].append(event.step)
                columns["bits per pixel"].append(float(value))
                columns["curve"].append(curve)
    return columns


def loss_figure(curves: dict[str, list], total_steps: int | None = None, k: int = 16) -> Figure:
    """The loss plot: training as a line, held-out checks as dots, on a log axis of bits per pixel, so that the
    fall from a blind guess (log₂ K bits, a dashed line) and the learning below 1 bit both show."""
    figure = Figure(figsize=(7.2, 3.4), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    blind = math.log2(k)
    for curve, style in (("training", {"color": "#4c78a8", "linewidth": 2}),
                         ("held-out", {"color": "#f58518", "marker": "o", "linestyle": "none", "markersize": 7})):
        points = [(s, v) for s, v, c in zip(curves["step"], curves["bits per pixel"], curves["curve"], strict=True)
                  if c == curve]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, label=curve, **style)
    axes.set_yscale("log")
    axes.axhline(blind, color="grey", linewidth=1.5, linestyle="--", label="blind guess (log₂ K)")
    values = [v for v in curves["bits per pixel"] if v > 0] or [1.0]
    high = blind * 1.125  # the blind guess always in view (a start worse than it is cut off)
    low = min(max(0.1, min(values) * 0.9), high * 0.8)
    axes.set_ylim(low, high)
    axes.yaxis.set_major_locator(FixedLocator([t for t in LOSS_TICKS if low <= t <= high]))
    axes.yaxis.set_minor_locator(NullLocator())
    axes.yaxis.set_major_formatter(lambda v, _: f"{v:g}")
    if total_steps:
        axes.set_xlim(0, total_steps)
    axes.set_xlabel("step", fontsize=13)
    axes.set_ylabel("bits per pixel (log)", fontsize=13)
    axes.tick_params(labelsize=12)
    axes.grid(True, alpha=0.3)
    if any(curves["curve"]):
        axes.legend(fontsize=12, loc="upper right")
    return figure
