"""Held-out negative log-likelihood in bits per pixel, and per-pixel NLL maps."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .context import gather_context, pad_tokens
from .data import Dataset, Split
from .device import autocast, compute_dtype
from .inputs import whole_number
from .models import N_PIXELS, PixelMLP

ROWS_PER_BATCH = 8192


@torch.no_grad()
def pixel_nll_bits(model: PixelMLP, tokens: torch.Tensor, labels: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """NLL of every pixel of every image under the model, in bits: (N, 784). ``tokens`` are (N, 784).

    precision: "fp32" (the default: exact figures), "bf16" or "auto" for the matmuls; the loss is fp32."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dtype = compute_dtype(precision, device)
    tokens, labels = tokens.to(device), labels.to(device)
    padded = pad_tokens(tokens, model.config.context, model.start_token)
    table = model.fc1_table().contiguous()
    out = torch.empty(tokens.shape, dtype=torch.float32, device=device)
    images_per_batch = max(1, ROWS_PER_BATCH // N_PIXELS)
    pixel = torch.arange(N_PIXELS, device=device).repeat(images_per_batch)
    for start in range(0, len(tokens), images_per_batch):
        n = min(images_per_batch, len(tokens) - start)
        image = torch.arange(start, start + n, device=device).repeat_interleave(N_PIXELS)
        pix = pixel[: n * N_PIXELS]
        with autocast(dtype, device):
            logits = model.forward_with_table(table, gather_context(padded, image, pix, model.config.context), pix, labels[image])
        nll = F.cross_entropy(logits.float(), tokens[image, pix], reduction="none") / math.log(2)
        out[start : start + n] = nll.view(n, N_PIXELS)
    model.train(was_training)
    return out.cpu()


def evaluate(model: PixelMLP, data: Dataset | Split, max_images: int | None = None, precision: str = "fp32") -> float:
    """Mean NLL in bits per pixel over the held-out split (or the given split); 4.0 is uniform over 16 bins.

    max_images: use that many images spread evenly over the split (a class-sorted split keeps every class)."""
    split = data.held_out if isinstance(data, Dataset) else data
    if len(split) < 1:
        raise ValueError("nothing to evaluate: the split is empty")
    if max_images is not None:
        split = split.subset(whole_number(max_images, "number of images to evaluate", 1, 10**7))
    return pixel_nll_bits(model, split.tokens(model.k), split.labels, precision).mean().item()


def nll_map(model: PixelMLP, image_tokens: torch.Tensor, label: int = 0) -> torch.Tensor:
    """Per-pixel NLL (bits) of one real image as a (28, 28) map."""
    nll = pixel_nll_bits(model, image_tokens.reshape(1, N_PIXELS), torch.tensor([label]))
    return nll.view(28, 28)
