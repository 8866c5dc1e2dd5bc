"""Held-out negative log-likelihood in bits per pixel, and per-pixel NLL maps."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .data import Dataset, Split
from .device import PRECISION_DTYPES, autocast
from .inputs import whole_number
from .interface import PixelModel
from .layers import N_PIXELS
from .planner import plan

IMAGES_PER_BATCH = 10  # 7,840 pixels per MLP call
IMAGES_PER_STEPPED_BATCH = 100  # int8 runs the sampler's steps: 784 calls per batch, so larger batches


@torch.no_grad()
def pixel_nll_bits(model: PixelModel, tokens: torch.Tensor, labels: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """NLL of every pixel of every image under the model, in bits: (N, 784). ``tokens`` are (N, 784).

    One ``model.image_logits`` call per batch of images. precision: "fp32" (the default: exact figures), "bf16",
    "int8" (the sampler's own steps, fed the real pixels) or "auto" (the sampler's choice, ``pixelar.planner``);
    the loss itself is always fp32. The model's train/eval mode is restored.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    path = "fp32" if precision == "fp32" else plan(model, precision).precision
    dtype = PRECISION_DTYPES[path]
    tokens, labels = tokens.to(device), labels.to(device)
    out = torch.empty(tokens.shape, dtype=torch.float32, device=device)
    per_batch = IMAGES_PER_STEPPED_BATCH if path == "int8" else IMAGES_PER_BATCH
    for start in range(0, len(tokens), per_batch):
        batch = slice(start, start + per_batch)
        if path == "int8":
            logits = stepped_logits(model, tokens[batch], labels[batch], dtype)
        else:
            with autocast(dtype, device):
                logits = model.image_logits(tokens[batch], labels[batch])  # (n, 784, K)
        out[batch] = F.cross_entropy(logits.float().transpose(1, 2), tokens[batch], reduction="none") / math.log(2)
    model.train(was_training)
    return out.cpu()


def stepped_logits(model: PixelModel, tokens: torch.Tensor, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Every pixel's logits computed as the sampler computes them, step by step, fed ``tokens``: (n, 784, K)."""
    state = model.begin(labels, dtype)
    return torch.stack([model.step(state, t, tokens) for t in range(N_PIXELS)], 1)


def evaluate(model: PixelModel, data: Dataset | Split, max_images: int | None = None, precision: str = "fp32") -> float:
    """Mean NLL in bits per pixel over the held-out split (or the given split); 4.0 is uniform over 16 bins.

    max_images: use that many images spread evenly over the split (a class-sorted split keeps every class)."""
    split = data.held_out if isinstance(data, Dataset) else data
    if len(split) < 1:
        raise ValueError("nothing to evaluate: the split is empty")
    if max_images is not None:
        split = split.subset(whole_number(max_images, "number of images to evaluate", 1, 10**7))
    return pixel_nll_bits(model, split.tokens(model.k), split.labels, precision).mean().item()


def nll_map(model: PixelModel, image_tokens: torch.Tensor, label: int = 0) -> torch.Tensor:
    """Per-pixel NLL (bits) of one real image as a (28, 28) map."""
    nll = pixel_nll_bits(model, image_tokens.reshape(1, N_PIXELS), torch.tensor([label]))
    return nll.view(28, 28)
