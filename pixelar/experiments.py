"""The teaching experiments beyond plain sampling: completion, surprise maps, what-if, temperature strips.

Each is a thin use of the one sampler or the one evaluator, so what the app shows is what the API returns.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .data import Split, quantize_grey_levels
from .evaluation import pixel_nll_bits
from .inputs import whole_number
from .interface import PixelModel
from .models import IMAGE_SIZE, N_PIXELS
from .sampling import Trace, sample


def complete(
    model: PixelModel, grey_levels: np.ndarray, keep_rows: int, n: int = 4, label: int = 0, temperature: float = 1.0, seed: int | None = None
) -> Trace:
    """Keep the first ``keep_rows`` rows of a real image (784 uint8 grey levels) and let the model finish it,
    ``n`` times. ``label`` is the class to finish it as (V3; it need not be the true one)."""
    prefix = completion_prefix(grey_levels, model.k, keep_rows)
    return sample(model, n, labels=label, temperature=temperature, seed=seed, prefix=prefix)


@dataclass
class Surprise:
    """Per-pixel NLL (bits) of one real image under one model, and its total. Bits compare only at the same K:
    a blind guess over K bins costs log2 K bits a pixel, so a 4-bin model's bits measure a coarser image."""

    nll_map: np.ndarray  # (28, 28) bits
    total_bits: float
    bits_per_pixel: float
    k: int  # the bins the bits are over

    @property
    def blind_guess(self) -> float:
        """Bits per pixel of a uniform guess over the K bins: log2 K."""
        return math.log2(self.k)


def score(model: PixelModel, grey_levels: np.ndarray, label: int = 0) -> Surprise:
    """How surprised ``model`` is by each pixel of an image (784 uint8 grey levels, read as class ``label``):
    -log2 p of each pixel's token given the pixels before it, as a (28, 28) map, and the total."""
    nll = pixel_nll_bits(model, torch.from_numpy(real_tokens(grey_levels, model.k)).view(1, N_PIXELS), torch.tensor([label]))[0]
    return Surprise(nll.view(IMAGE_SIZE, IMAGE_SIZE).numpy(), float(nll.sum()), float(nll.mean()), model.k)


def surprise(models: Mapping[str, PixelModel], grey_levels: np.ndarray, label: int = 0) -> dict[str, Surprise]:
    """How surprised each model is by each pixel of a real image (784 uint8 grey levels of class ``label``)."""
    return {name: score(model, grey_levels, label) for name, model in models.items()}


def what_if(model: PixelModel, trace: Trace, step: int, token: int) -> Trace:
    """The same generation (same seed, labels, temperature) with pixel ``step`` forced to ``token``:
    everything before ``step`` is kept, so only the future differs."""
    if not isinstance(step, (int, np.integer)) or not 0 <= step < N_PIXELS:
        raise ValueError(f"step must be from 0 to {N_PIXELS - 1}, got {step!r}")
    return sample(
        model, len(trace), labels=trace.labels, temperature=trace.temperature, seed=trace.seed,
        prefix=trace.tokens[:, :step], forced={step: token},
    )


def temperature_strip(
    model: PixelModel, temperatures: Sequence[float] = (0.3, 0.6, 1.0, 1.5), label: int = 0, seed: int | None = None
) -> list[Trace]:
    """One image per temperature, same model, class and seed (the same dice): what temperature alone does."""
    if not temperatures:
        raise ValueError("give at least one temperature")
    first = sample(model, 1, labels=label, temperature=temperatures[0], seed=seed)
    return [first] + [sample(model, 1, labels=label, temperature=t, seed=first.seed) for t in temperatures[1:]]


def real_image(split: Split, index: int) -> tuple[np.ndarray, int]:
    """Image ``index`` of a split: its 784 uint8 grey levels and its class."""
    index = whole_number(index, "image number", 0, len(split) - 1)
    return split.images[index].numpy().astype(np.uint8), int(split.labels[index])


def random_index_of_class(split: Split, label: int, seed: int | None = None) -> int:
    """The index of a random image of class ``label`` in a split."""
    label = whole_number(label, "class", 0, 2**31 - 1)
    matches = np.flatnonzero(split.labels.numpy() == label)
    if not len(matches):
        raise ValueError(f"no image of class {label!r} in this data set")
    return int(np.random.default_rng(seed).choice(matches))


def real_tokens(grey_levels: np.ndarray, k: int) -> np.ndarray:
    """A real image's 784 uint8 grey levels as the model's tokens (784,) int64."""
    levels = np.asarray(grey_levels)
    if levels.size != N_PIXELS or levels.min(initial=0) < 0 or levels.max(initial=0) > 255:
        raise ValueError(f"a real image is {N_PIXELS} grey levels from 0 to 255")
    return quantize_grey_levels(torch.from_numpy(levels.reshape(N_PIXELS).astype(np.int64)), k).numpy()


def completion_prefix(grey_levels: np.ndarray, k: int, keep_rows: int) -> np.ndarray:
    """The tokens of a real image's first ``keep_rows`` rows: what a completion keeps."""
    if not isinstance(keep_rows, (int, np.integer)) or not 0 <= keep_rows <= IMAGE_SIZE:
        raise ValueError(f"rows to keep must be from 0 to {IMAGE_SIZE}, got {keep_rows!r}")
    return real_tokens(grey_levels, k)[: keep_rows * IMAGE_SIZE]
