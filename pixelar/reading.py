"""A model that draws can also read: a picture made into an MNIST digit, and read by Bayes' rule.

A class-conditional model gives log p(x | c) exactly: the sum over pixels of the log-probability of each pixel's
token given the pixels before it and the class c. With a uniform prior over the classes,
p(c | x) = softmax over c of log p(x | c): a generative classifier, made of the model and nothing else.

A drawing is a digit only after MNIST's own preprocessing (LeCun et al.): strokes bright on dark, the ink's
bounding box scaled to fit 20x20 keeping its aspect ratio, placed in 28x28 with its centre of mass at the centre.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .evaluation import pixel_nll_bits
from .experiments import Surprise, real_tokens, score
from .layers import IMAGE_SIZE, N_PIXELS

DIGIT_BOX = 20  # MNIST fits each digit's bounding box in 20x20 ...
CENTRE = (IMAGE_SIZE - 1) / 2  # ... and puts its centre of mass at the middle of the 28x28 frame
INK = 0.1  # a pixel at least this bright (0..1, after the paper is made dark) is ink
MAX_PICTURE_BYTES = 20 * 2**20  # a photo or scan larger than this is refused before it is read
MAX_PICTURE_PIXELS = 40_000_000  # and one that decodes to more pixels than this (a decompression bomb)


def read_picture(source: str | Path | bytes) -> np.ndarray:
    """A picture file (path or bytes; PNG, JPEG, WebP, GIF, BMP, ...) as grey levels (H, W) float32 in 0..1,
    transparent parts as white paper. ValueError if it is not an image or is too large."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no picture file {path}")
        if path.stat().st_size > MAX_PICTURE_BYTES:
            raise ValueError(f"the picture is larger than {MAX_PICTURE_BYTES // 2**20} MB")
        source = path.read_bytes()
    if len(source) > MAX_PICTURE_BYTES:
        raise ValueError(f"the picture is larger than {MAX_PICTURE_BYTES // 2**20} MB")
    try:
        with Image.open(io.BytesIO(source)) as picture:
            if picture.width * picture.height > MAX_PICTURE_PIXELS:
                raise ValueError(f"the picture has more than {MAX_PICTURE_PIXELS:,} pixels")
            return as_grey(np.asarray(picture.convert("RGBA")))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError):
        raise ValueError("that file is not a picture this app can read (PNG, JPEG, WebP, GIF, BMP)") from None


def as_grey(picture: np.ndarray) -> np.ndarray:
    """A picture array, (H, W) grey or (H, W, 3|4) RGB(A), uint8 or floats in 0..1, as grey (H, W) float32 in 0..1.
    Transparent pixels count as white paper, as in a sketch drawn on a transparent canvas."""
    array = np.asarray(picture)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)) or min(array.shape[:2]) < 1:
        raise ValueError(f"a picture is (height, width) grey or (height, width, 3 or 4) colour, got shape {array.shape}")
    if array.shape[0] * array.shape[1] > MAX_PICTURE_PIXELS:
        raise ValueError(f"the picture has more than {MAX_PICTURE_PIXELS:,} pixels")
    if array.dtype.kind not in "uif" or array.dtype == bool:
        raise ValueError(f"a picture's values are numbers, got {array.dtype}")
    array = array.astype(np.float32) / (255.0 if array.dtype.kind in "ui" else 1.0)
    if not np.all(np.isfinite(array)):
        raise ValueError("a picture's values must be finite")
    array = np.clip(array, 0.0, 1.0)
    if array.ndim == 2:
        return array
    alpha = array[..., 3] if array.shape[2] == 4 else 1.0
    grey = array[..., 0] if array.shape[2] == 1 else array[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return grey * alpha + (1.0 - alpha)  # over white paper


def prepare_drawing(picture: np.ndarray) -> np.ndarray:
    """A drawing or photo of one digit as an MNIST digit: 784 uint8 grey levels, raster order.

    Dark ink on light paper is turned into light ink on dark (the paper is what the border mostly is); the ink's
    bounding box is scaled to fit 20x20 keeping its aspect ratio, and placed with its centre of mass at the centre.
    ValueError for a blank picture."""
    grey = as_grey(picture)
    ink = 1.0 - grey if np.median(_border(grey)) > 0.5 else grey
    ink = ink - np.median(_border(ink))  # the paper is 0
    rows, cols = np.nonzero(ink >= INK)
    if not len(rows):
        raise ValueError("the drawing is blank: draw a digit first")
    box = np.clip(ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1], 0.0, None)
    box = box / box.max()
    scale = DIGIT_BOX / max(box.shape)
    height, width = max(1, round(box.shape[0] * scale)), max(1, round(box.shape[1] * scale))
    fitted = np.asarray(Image.fromarray(box, mode="F").resize((width, height), Image.Resampling.LANCZOS))
    fitted = np.clip(fitted, 0.0, 1.0)
    return _centred(fitted)


def _border(picture: np.ndarray) -> np.ndarray:
    return np.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]])


def _centred(digit: np.ndarray) -> np.ndarray:
    """A fitted digit (at most 20x20, floats 0..1) in a 28x28 frame, centre of mass at the centre: 784 uint8."""
    height, width = digit.shape
    mass = digit.sum()
    com_row = (digit.sum(1) @ np.arange(height)) / mass
    com_col = (digit.sum(0) @ np.arange(width)) / mass
    top = int(np.clip(round(CENTRE - com_row), 0, IMAGE_SIZE - height))
    left = int(np.clip(round(CENTRE - com_col), 0, IMAGE_SIZE - width))
    frame = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    frame[top:top + height, left:left + width] = digit
    return np.round(frame.reshape(N_PIXELS) * 255).astype(np.uint8)


def _grey_levels(images) -> np.ndarray:
    """(N, 784) or (N, 28, 28) uint8 grey levels, checked, as (N, 784) uint8."""
    array = np.asarray(images)
    if array.ndim not in (2, 3) or array.shape[0] < 1 or array[0].size != N_PIXELS:
        raise ValueError(f"images are (N, 784) or (N, 28, 28) grey levels, got shape {array.shape}")
    return array.reshape(len(array), N_PIXELS)


def _tokens(model, images) -> torch.Tensor:
    """Grey-level images, checked, as the model's tokens: (N, 784) int64."""
    return torch.from_numpy(np.stack([real_tokens(image, model.k) for image in _grey_levels(images)]))


def bits_per_pixel(model, images, label: int) -> np.ndarray:
    """Each image's mean bits per pixel read as class ``label``: (N,), one batched pass (the evaluator's)."""
    tokens = _tokens(model, images)
    return pixel_nll_bits(model, tokens, torch.full((len(tokens),), label)).mean(1).numpy()


def pixel_bits_per_class(model, images) -> torch.Tensor:
    """-log2 p of every pixel of every image under every class: (N, classes, 784). One batched pass over
    images x classes."""
    if not model.conditional:
        raise ValueError(f"{model.name} is not class-conditional: it cannot read a digit (use V3, V4 or another conditional model)")
    tokens = _tokens(model, images)
    classes = model.config.num_classes
    tiled = tokens.repeat_interleave(classes, dim=0)  # (N * classes, 784): each image once per class
    labels = torch.arange(classes).repeat(len(tokens))
    return pixel_nll_bits(model, tiled, labels).view(len(tokens), classes, N_PIXELS)


def log_likelihoods(model, images) -> torch.Tensor:
    """log p(x | c) in nats of every image under every class: (N, classes)."""
    return -(pixel_bits_per_class(model, images).sum(2).double() * math.log(2))


def classify(model, images) -> torch.Tensor:
    """log p(c | x) for every image and class with a uniform prior: (N, classes), each row's exp sums to 1."""
    return torch.log_softmax(log_likelihoods(model, images), dim=1)


@dataclass
class Reading:
    """What one model makes of one image: its surprise at each pixel (read as ``label``) and, for a
    class-conditional model, p(class | image) (else None)."""

    surprise: Surprise
    posterior: list[float] | None


def read(model, grey_levels: np.ndarray, label: int = 0) -> Reading:
    """``score`` and, for a class-conditional model, ``classify`` of one image (784 uint8 grey levels), from one
    pass over its classes."""
    if not model.conditional:
        return Reading(score(model, grey_levels, label), None)
    bits = pixel_bits_per_class(model, np.asarray(grey_levels)[None])[0]  # (classes, 784)
    posterior = torch.softmax(-(bits.sum(1).double() * math.log(2)), 0).tolist()
    mine = bits[label]
    return Reading(Surprise(mine.view(IMAGE_SIZE, IMAGE_SIZE).numpy(), float(mine.sum()), float(mine.mean()), model.k), posterior)
