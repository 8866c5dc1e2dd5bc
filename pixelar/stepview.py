"""The server-side step renderer: one step of a generation, drawn from its ``Trace`` (canvas with the context
window, bin bars, entropy and pick-surprise maps, caption). The app's player draws the same in the browser;
this stays for scripts, benchmarks and the CLI.

Nothing here runs a model: every picture comes from the stored trace, so a slider can redraw any step in a
few milliseconds. numpy and PIL only (matplotlib's colour tables via ``render``); no gradio, no torch.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import render
from .models import IMAGE_SIZE, N_PIXELS
from .sampling import Trace, entropy_bits, softmax_at

CURRENT = (255, 150, 30)  # the pixel being chosen, and its bin in the bar chart
WINDOW = (40, 210, 255)  # the context window the model sees
RESHAPED = (255, 90, 200)  # the distribution at another temperature
START = (45, 65, 120)  # start-token padding above the image
BACKGROUND = (28, 28, 36)
TEXT = (235, 235, 240)
BAR = (150, 160, 185)
SURPRISE_MAX_BITS = 8.0  # the shared top of every surprise map's colour scale
BAR_MARGINS = (46, 10, 34, 58)  # left, right, top, bottom of the bar chart's plot area


@functools.lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont:
    """PIL's built-in scalable font at ``size`` pixels (a bitmap font where FreeType is missing)."""
    return ImageFont.load_default(size=size)


def padding_rows(context: int) -> int:
    """Rows of start tokens drawn above the image so that every context window is visible.

    None for a model that sees the whole past (``context >= 784``, V4): it has no start tokens.
    """
    return 0 if context >= N_PIXELS else math.ceil(context / IMAGE_SIZE)


def window_mask(step: int, context: int) -> np.ndarray:
    """Cells the model sees when choosing pixel ``step``, on the padded grid: (pad rows + 28, 28) bool.

    The padded grid is the image with ``padding_rows(context)`` rows above it whose last ``context`` cells hold
    start tokens, so the window is always the ``context`` cells just before ``step`` in raster order.
    """
    pad = padding_rows(context) * IMAGE_SIZE
    mask = np.zeros(pad + N_PIXELS, dtype=bool)
    if step < N_PIXELS:
        mask[max(0, pad + step - context) : pad + step] = True
    return mask.reshape(-1, IMAGE_SIZE)


def _outline(draw: ImageDraw.ImageDraw, mask: np.ndarray, scale: int, colour, width: int, top: int = 0) -> None:
    """Draw the boundary of the cells in ``mask`` (H, W): every cell edge with no masked neighbour across it."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1]
    edges = {
        "top": inner & ~padded[:-2, 1:-1],
        "bottom": inner & ~padded[2:, 1:-1],
        "left": inner & ~padded[1:-1, :-2],
        "right": inner & ~padded[1:-1, 2:],
    }
    for side, cells in edges.items():
        for row, col in zip(*np.nonzero(cells), strict=True):
            x0, y0, x1, y1 = col * scale, top + row * scale, (col + 1) * scale, top + (row + 1) * scale
            line = {"top": (x0, y0, x1, y0), "bottom": (x0, y1, x1, y1), "left": (x0, y0, x0, y1), "right": (x1, y0, x1, y1)}
            draw.line(line[side], fill=colour, width=width)


def step_canvas(trace: Trace, step: int, index: int = 0, scale: int = 16) -> Image.Image:
    """The image while pixel ``step`` is chosen: pixels before it drawn, pixel ``step`` shown with its choice
    and framed, later pixels grey, the start-token rows on top, and the context window outlined.

    ``step`` runs 0..784; at 784 the image is complete and nothing is marked.
    """
    step = check_step(step)
    pad_rows = padding_rows(trace.context)
    shown = render.trace_image(trace, index, min(step + 1, N_PIXELS)).reshape(N_PIXELS)
    grey = np.stack([(np.clip(shown, 0, 1) * 255).round().astype(np.uint8)] * 3, axis=-1)  # (784, 3)
    grey[step + 1 :] = render.UNSEEN
    padding = np.tile(np.array(render.GUTTER, dtype=np.uint8), (pad_rows * IMAGE_SIZE, 1))
    padding[pad_rows * IMAGE_SIZE - trace.context :] = START
    cells = np.concatenate([padding, grey]).reshape(pad_rows + IMAGE_SIZE, IMAGE_SIZE, 3)
    picture = Image.fromarray(render.upscale(cells, scale))
    draw = ImageDraw.Draw(picture)
    if scale >= 12 and pad_rows:
        draw.text((4, pad_rows * scale - scale // 2), "start tokens", fill=TEXT, font=font(scale * 3 // 4), anchor="lm")
    if step < N_PIXELS:
        _outline(draw, window_mask(step, trace.context), scale, WINDOW, max(2, scale // 5))
        current = np.zeros((pad_rows + IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
        current[pad_rows + step // IMAGE_SIZE, step % IMAGE_SIZE] = True
        _outline(draw, current, scale, CURRENT, max(3, scale // 4))
    return picture


def check_step(step: int) -> int:
    """``step`` as an int from 0 to 784 (784: the finished image), or a ValueError that says so."""
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    if not isinstance(step, (int, np.integer)) or not 0 <= step <= N_PIXELS:
        raise ValueError(f"step must be a whole number from 0 to {N_PIXELS}, got {step!r}")
    return int(step)


def probability_bars(
    probs: np.ndarray,
    chosen: int | None = None,
    reshaped: np.ndarray | None = None,
    labels: tuple[str, str] = ("sampled", "other temperature"),
    size: tuple[int, int] = (520, 320),
) -> Image.Image:
    """Bar chart of one step's K bin probabilities on a fixed 0..1 scale, chosen bin in orange.

    ``reshaped``: the same step's distribution at another temperature, drawn as outlined bars over the
    filled ones. Under each bar a swatch shows the grey level that bin stands for.
    """
    probs = np.asarray(probs, dtype=np.float64)
    k = len(probs)
    width, height = size
    picture = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(picture)
    small, big = font(15), font(18)
    left, right, top, bottom = BAR_MARGINS
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / k

    def y_of(p: float) -> float:
        return top + plot_h * (1 - p)

    for p in (0.0, 0.5, 1.0):
        draw.line((left, y_of(p), width - right, y_of(p)), fill=(70, 70, 85), width=1)
        draw.text((left - 6, y_of(p)), f"{p:g}", fill=TEXT, font=small, anchor="rm")
    for b in range(k):
        x0, x1 = left + b * slot + slot * 0.12, left + (b + 1) * slot - slot * 0.12
        colour = CURRENT if b == chosen else BAR
        if probs[b] > 0:
            draw.rectangle((x0, y_of(probs[b]), x1, y_of(0)), fill=colour)
        if reshaped is not None:
            draw.rectangle((x0, y_of(float(reshaped[b])), x1, y_of(0)), outline=RESHAPED, width=3)
        level = round((b + 0.5) / k * 255)
        draw.rectangle((x0, height - bottom + 6, x1, height - bottom + 22), fill=(level,) * 3, outline=(90, 90, 105))
        draw.text(((x0 + x1) / 2, height - bottom + 26), str(b), fill=TEXT, font=small, anchor="mt")
    draw.text((left, 8), "p(bin)", fill=TEXT, font=big)
    legend_x = left + 80
    draw.rectangle((legend_x, 12, legend_x + 14, 26), fill=CURRENT)
    draw.text((legend_x + 20, 8), "chosen", fill=TEXT, font=big)
    legend_x += 110
    draw.rectangle((legend_x, 12, legend_x + 14, 26), fill=BAR)
    draw.text((legend_x + 20, 8), labels[0], fill=TEXT, font=big)
    if reshaped is not None:
        legend_x += 30 + draw.textlength(labels[0], font=big)
        draw.rectangle((legend_x, 12, legend_x + 14, 26), outline=RESHAPED, width=3)
        draw.text((legend_x + 20, 8), labels[1], fill=TEXT, font=big)
    draw.text((width / 2, height - 4), "intensity bin (dark to bright)", fill=TEXT, font=small, anchor="mb")
    return picture


def with_color_bar(picture: Image.Image, vmin: float, vmax: float, cmap: str, label: str) -> Image.Image:
    """``picture`` with a labelled colour bar under it, for heat maps on a fixed scale; the labels grow with the
    picture so that they stay readable when it is shown scaled down."""
    width = picture.width
    size = max(15, width // 40)
    strip = render.heatmap(np.linspace(vmin, vmax, width)[None, :].repeat(14, axis=0), vmin, vmax, cmap, scale=1)
    out = Image.new("RGB", (width, picture.height + 29 + size), BACKGROUND)
    out.paste(picture, (0, 0))
    out.paste(strip, (0, picture.height + 4))
    draw = ImageDraw.Draw(out)
    y = picture.height + 20
    draw.text((2, y), f"{vmin:g}", fill=TEXT, font=font(size))
    draw.text((width / 2, y), label, fill=TEXT, font=font(size), anchor="mt")
    draw.text((width - 2, y), f"{vmax:g}", fill=TEXT, font=font(size), anchor="rt")
    return out


def _mark(picture: Image.Image, step: int, scale: int) -> Image.Image:
    if step < N_PIXELS:
        row, col = divmod(step, IMAGE_SIZE)
        ImageDraw.Draw(picture).rectangle(
            (col * scale, row * scale, (col + 1) * scale - 1, (row + 1) * scale - 1), outline=CURRENT, width=max(2, scale // 5)
        )
    return picture


def entropy_map(trace: Trace, step: int, index: int = 0, scale: int = 10) -> Image.Image:
    """Entropy (bits) of every step up to ``step``, on the fixed scale 0..log2 K, with the current pixel framed."""
    step = check_step(step)
    picture = _mark(render.entropy_heatmap(trace, index, min(step + 1, N_PIXELS), scale), step, scale)
    return with_color_bar(picture, 0.0, math.log2(trace.k), "magma", "entropy, bits")


def chosen_prob_map(trace: Trace, step: int, index: int = 0, scale: int = 10) -> Image.Image:
    """How improbable each pick up to ``step`` was: -log2 p(chosen) in bits on the fixed scale
    0..SURPRISE_MAX_BITS, so that, as on every heat map here, dark is unremarkable and bright is notable."""
    step = check_step(step)
    values = render.trace_map(trace, "chosen_prob", index, min(step + 1, N_PIXELS))
    bits = -np.log2(np.clip(values, 1e-12, 1.0))
    picture = _mark(render.heatmap(bits, 0.0, SURPRISE_MAX_BITS, "inferno", scale), step, scale)
    return with_color_bar(picture, 0.0, SURPRISE_MAX_BITS, "inferno", "surprise of the pick, bits")


def describe_step(trace: Trace, step: int, index: int = 0, uses_position: bool = True, class_name: str | None = None) -> str:
    """One line for a class: where pixel ``step`` is, what the model sees, and what it chose."""
    step = check_step(step)
    if step == N_PIXELS:
        return f"Done: all {N_PIXELS} pixels chosen (temperature {trace.temperature:g}, seed {trace.seed})."
    row, col = divmod(step, IMAGE_SIZE)
    c = trace.context
    starts, previous = (max(0, c - step) if c < N_PIXELS else 0), min(c, step)
    seen = []
    if starts:
        seen.append(f"{starts} start token{'s' * (starts != 1)}")
    if previous:
        first_row, first_col = divmod(step - previous, IMAGE_SIZE)
        last_row, last_col = divmod(step - 1, IMAGE_SIZE)
        span = f"row {first_row} col {first_col} → row {last_row} col {last_col}"
        seen.append(f"{previous} previous pixel{'s' * (previous != 1)} ({span})")
    if uses_position:
        seen.append("its row and column")
    if class_name is not None:
        seen.append(f"the class “{class_name}”")
    token = int(trace.tokens[index, step])
    how = "given" if step < trace.prefix_length else "chose"
    return (
        f"Step {step}: row {row}, column {col}. The model sees {', '.join(seen)}. "
        f"It {how} bin {token} of {trace.k} (p = {trace.chosen_prob[index, step]:.2f}); "
        f"entropy {trace.entropy[index, step]:.2f} bits."
    )


@dataclass
class StepView:
    """Everything the step-through view shows at one step."""

    step: int
    canvas: Image.Image
    bars: Image.Image
    entropy_map: Image.Image
    chosen_prob_map: Image.Image
    entropy: float | None  # bits, at the sampling temperature; None once the image is complete
    chosen_prob: float | None
    caption: str


def render_step(
    trace: Trace,
    step: int,
    index: int = 0,
    temperature: float | None = None,
    uses_position: bool = True,
    class_name: str | None = None,
    scale: int = 16,
) -> StepView:
    """All pictures and numbers for step ``step`` of image ``index``.

    ``temperature``: if it differs from the trace's, the bar chart also shows this step's distribution
    re-shaped at it (``softmax_at`` of the stored logits) and the caption gives its entropy.
    """
    step = check_step(step)
    caption = describe_step(trace, step, index, uses_position, class_name)
    if step == N_PIXELS:
        bars = probability_bars(np.zeros(trace.k))
        entropy = chosen_prob = None
    else:
        token = int(trace.tokens[index, step])
        reshaped = None
        if temperature is not None and not math.isclose(temperature, trace.temperature):
            reshaped = softmax_at(trace.logits[index, step], temperature)
            caption += (
                f" At T = {temperature:g}: entropy {float(entropy_bits(reshaped)):.2f} bits,"
                f" p(bin {token}) = {reshaped[token]:.2f}."
            )
        labels = (f"T = {trace.temperature:g}", f"T = {temperature:g}" if temperature else "")
        bars = probability_bars(trace.probs[index, step], token, reshaped, labels)
        entropy, chosen_prob = float(trace.entropy[index, step]), float(trace.chosen_prob[index, step])
    heat_scale = max(4, scale * 5 // 8)
    return StepView(
        step=step,
        canvas=step_canvas(trace, step, index, scale),
        bars=bars,
        entropy_map=entropy_map(trace, step, index, heat_scale),
        chosen_prob_map=chosen_prob_map(trace, step, index, heat_scale),
        entropy=entropy,
        chosen_prob=chosen_prob,
        caption=caption,
    )
