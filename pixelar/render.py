"""Pictures of images and traces as numpy arrays and PIL images (no plotting library needed at run time), and the
colours every picture shares: ``COLOURS`` is also what the app's step player (``demo/player.js``) draws with."""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .models import IMAGE_SIZE, N_PIXELS
from .sampling import Trace

COLOURS = {  # RGB; the step player gets them as CSS colours (``css_colours``), so Python and the page agree
    "bg": (28, 28, 36),  # background of the player and of colour bars
    "text": (235, 235, 240),
    "dim": (154, 154, 174),  # secondary text in the player
    "grid": (70, 70, 85),  # the bar chart's grid lines
    "bar": (150, 160, 185),  # a bin's probability as sampled
    "chosen": (255, 150, 30),  # the pixel being chosen, and its bin in the bar chart
    "window": (40, 210, 255),  # the context window the model sees
    "reshaped": (255, 90, 200),  # the distribution at another temperature, top-k or top-p
    "start": (45, 65, 120),  # start-token padding above the image
    "gutter": (40, 40, 48),  # between tiles of a grid
    "unseen": (70, 70, 80),  # pixels not generated yet
    "looked": (124, 240, 60),  # where it looked: the dots on the player's canvas
}
GUTTER, UNSEEN, CURRENT = COLOURS["gutter"], COLOURS["unseen"], COLOURS["chosen"]
SURPRISE_MAX_BITS = 8.0  # the shared top of every surprise map's colour scale (the player's too)


def css_colours() -> dict[str, str]:
    """``COLOURS`` as CSS hex colours: ``{"chosen": "#ff961e", ...}``."""
    return {name: "#" + "".join(f"{v:02x}" for v in rgb) for name, rgb in COLOURS.items()}


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    """PIL's built-in scalable font at ``size`` pixels (a bitmap font where FreeType is missing)."""
    return ImageFont.load_default(size=size)


def upscale(array: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of an (H, W[, C]) array: each pixel becomes a scale x scale block."""
    return array.repeat(scale, axis=0).repeat(scale, axis=1)


def grey_image(image: np.ndarray, scale: int = 8) -> Image.Image:
    """A (28, 28) image in [0, 1] as an RGB picture."""
    grey = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(upscale(np.stack([grey] * 3, axis=-1), scale))


def _colormap(name: str) -> np.ndarray:
    from matplotlib import colormaps  # the colour tables only; pyplot is never imported

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def heatmap(values: np.ndarray, vmin: float, vmax: float, cmap: str = "magma", scale: int = 8) -> Image.Image:
    """Values on a fixed scale [vmin, vmax] through a colour map; NaN (not generated yet) shows grey."""
    values = np.asarray(values, dtype=np.float64)
    unseen = np.isnan(values)
    level = np.clip((np.nan_to_num(values, nan=vmin) - vmin) / (vmax - vmin), 0, 1)
    rgb = _colormap(cmap)[(level * 255).round().astype(int)]
    rgb[unseen] = UNSEEN
    return Image.fromarray(upscale(rgb, scale))


def trace_image(trace: Trace, index: int = 0, step: int = N_PIXELS) -> np.ndarray:
    """Image ``index`` of a trace as generated up to (not including) ``step``; later pixels are 0."""
    image = trace.images()[index].reshape(N_PIXELS).copy()
    image[step:] = 0.0
    return image.reshape(IMAGE_SIZE, IMAGE_SIZE)


def trace_map(trace: Trace, kind: str, index: int = 0, step: int = N_PIXELS) -> np.ndarray:
    """Per-pixel ``"entropy"`` (bits) or ``"chosen_prob"`` of image ``index`` up to ``step``; NaN after it."""
    values = getattr(trace, kind)[index].astype(np.float64).copy()
    values[step:] = np.nan
    return values.reshape(IMAGE_SIZE, IMAGE_SIZE)


def with_color_bar(picture: Image.Image, vmin: float, vmax: float, cmap: str, label: str) -> Image.Image:
    """``picture`` with a labelled colour bar under it, for heat maps on a fixed scale; the labels grow with the
    picture so that they stay readable when it is shown scaled down."""
    width = picture.width
    size = max(15, width // 40)
    strip = heatmap(np.linspace(vmin, vmax, width)[None, :].repeat(14, axis=0), vmin, vmax, cmap, scale=1)
    out = Image.new("RGB", (width, picture.height + 29 + size), COLOURS["bg"])
    out.paste(picture, (0, 0))
    out.paste(strip, (0, picture.height + 4))
    draw = ImageDraw.Draw(out)
    y = picture.height + 20
    draw.text((2, y), f"{vmin:g}", fill=COLOURS["text"], font=_font(size))
    draw.text((width / 2, y), label, fill=COLOURS["text"], font=_font(size), anchor="mt")
    draw.text((width - 2, y), f"{vmax:g}", fill=COLOURS["text"], font=_font(size), anchor="rt")
    return out


def entropy_heatmap(trace: Trace, index: int = 0, step: int = N_PIXELS, scale: int = 8) -> Image.Image:
    """Entropy of each step's distribution, on the fixed scale 0 .. log2 K bits."""
    return heatmap(trace_map(trace, "entropy", index, step), 0.0, math.log2(trace.k), "magma", scale)


def chosen_prob_heatmap(trace: Trace, index: int = 0, step: int = N_PIXELS, scale: int = 8) -> Image.Image:
    """Probability the model gave the token it chose, on the fixed scale 0 .. 1."""
    return heatmap(trace_map(trace, "chosen_prob", index, step), 0.0, 1.0, "viridis", scale)


def tile(pictures: list[Image.Image], columns: int | None = None, pad: int = 4, captions: list[str] | None = None) -> Image.Image:
    """Equal-sized pictures in a grid with a gutter; optional one-line caption under each, its font sized to
    the pictures (a seventh of a picture's width, up to 40 px: Fashion's names under a grid of 16 are 24 px, about
    18 px on screen in Generate's Present) and shrunk until the longest caption fits its picture."""
    if not pictures:
        raise ValueError("nothing to tile")
    columns = columns or math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / columns)
    w, h = pictures[0].size
    font_size = max(14, min(40, w // 7))
    font = ImageFont.load_default(size=font_size)
    while captions and font_size > 10 and max(font.getlength(c) for c in captions) > w - 4:
        font_size -= 1
        font = ImageFont.load_default(size=font_size)
    caption_h = round(font_size * 1.3) if captions else 0
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad + caption_h) + pad), GUTTER)
    draw = ImageDraw.Draw(sheet)
    for i, picture in enumerate(pictures):
        x, y = pad + (i % columns) * (w + pad), pad + (i // columns) * (h + pad + caption_h)
        sheet.paste(picture, (x, y))
        if captions:
            draw.text((x + 2, y + h + 1), captions[i], fill=(230, 230, 230), font=font)
    return sheet


def sample_grid(images: np.ndarray, columns: int | None = None, scale: int = 4, captions: list[str] | None = None) -> Image.Image:
    """(N, 28, 28) images in [0, 1] as one grid picture."""
    return tile([grey_image(im, scale) for im in images], columns, captions=captions)



def drawing_frame(trace: Trace, step: int, index: int = 0, scale: int = 8) -> Image.Image:
    """Image ``index`` while pixel ``step`` is chosen: earlier pixels drawn, later ones in ``UNSEEN`` grey (not
    black, which is a drawn colour), and pixel ``step`` framed in orange (none at 784, the finished image)."""
    image = trace_image(trace, index, step).reshape(N_PIXELS)
    rgb = np.stack([(np.clip(image, 0, 1) * 255).round().astype(np.uint8)] * 3, axis=-1)  # (784, 3)
    rgb[step:] = UNSEEN
    picture = Image.fromarray(upscale(rgb.reshape(IMAGE_SIZE, IMAGE_SIZE, 3), scale))
    if step < N_PIXELS:
        row, col = divmod(step, IMAGE_SIZE)
        box = (col * scale, row * scale, (col + 1) * scale - 1, (row + 1) * scale - 1)
        ImageDraw.Draw(picture).rectangle(box, outline=CURRENT, width=max(1, scale // 4))
    return picture


def generation_gif(trace: Trace, path: str | Path, index: int = 0, scale: int = 8, every: int = 14, ms_per_frame: int = 60) -> Path:
    """An animated GIF of image ``index`` being drawn, ``every`` pixels a frame (the pixel being chosen framed,
    pixels not drawn yet in grey), holding the finished image."""
    steps = list(range(0, N_PIXELS, every)) + [N_PIXELS]
    frames = [drawing_frame(trace, t, index, scale) for t in steps]
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[ms_per_frame] * (len(frames) - 1) + [1500], loop=0)
    return path
