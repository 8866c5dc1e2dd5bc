"""The one sampler: B images advance pixel by pixel together, each with its own label, and leave a trace.

Every model samples through ``state = model.begin(labels)`` and ``logits = model.step(state, t, canvas)``: an
MLP's state is its padded canvas and fc1 table, V4's its per-layer activation caches.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .data import dequantize
from .layers import IMAGE_SIZE, N_PIXELS

MAX_SAMPLES = 1024  # images per call; more is a mistake rather than a wish


@dataclass
class Trace:
    """Everything a generation did, step by step, as numpy arrays (image b, step t = flat pixel index)."""

    tokens: np.ndarray  # (B, 784) int64 chosen (or given) tokens
    logits: np.ndarray  # (B, 784, K) float32 raw model outputs, before temperature
    probs: np.ndarray  # (B, 784, K) float32 the distribution sampled from (softmax(logits / T))
    entropy: np.ndarray  # (B, 784) float32 entropy of ``probs`` in bits
    chosen_prob: np.ndarray  # (B, 784) float32 probability of the chosen token
    labels: np.ndarray  # (B,) int64 class each image was conditioned on
    temperature: float
    seed: int
    k: int
    context: int  # earlier pixels the model sees at each step; 784 (V4): all of them, no start tokens
    prefix_length: int = 0  # steps copied from a given prefix rather than sampled

    def images(self) -> np.ndarray:
        """De-quantised images (B, 28, 28) in [0, 1]."""
        return dequantize(self.tokens, self.k).reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.float32)

    def __len__(self) -> int:
        return len(self.tokens)


def check_temperature(temperature: float) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = float("nan")
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a finite number above 0, got {temperature!r}")
    return t


def softmax_at(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The distribution ``softmax(logits / T)`` over the last axis: how a step's choice reshapes with T."""
    z = np.asarray(logits, dtype=np.float64) / check_temperature(temperature)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


def entropy_bits(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    return -(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0)).sum(axis=-1)


@torch.no_grad()
def sample(
    model: nn.Module,
    n: int = 1,
    labels: int | Sequence[int] | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    prefix: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    forced: Mapping[int, int] | None = None,
) -> Trace:
    """Generate ``n`` images in raster order and return their ``Trace``.

    labels: one class for all, one per image, or None (cycle through the classes; ignored by V1/V2).
    temperature: logits are divided by it before the softmax; must be finite and > 0.
    seed: makes the result repeatable; None draws one, kept in ``trace.seed``. Step t of image b always uses
        the same random number for a given seed, so runs that differ only in temperature, prefix or forced
        tokens are directly comparable.
    prefix: known tokens for the first pixels, (P,) for every image or (n, P): image completion.
    forced: ``{step: token}`` tokens imposed at given steps (the "what if" of the step-through view).
    """
    temperature = check_temperature(temperature)
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"number of samples must be an integer from 1 to {MAX_SAMPLES}, got {n!r}")
    k, c = model.k, model.config.context
    device = next(model.parameters()).device
    label_t = _labels(model, n, labels).to(device)
    prefix_t = _prefix(prefix, n, k).to(device)
    forced = _forced(forced, k)
    seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else int(seed)
    # One uniform draw per (image, step), made up front: a step's randomness does not depend on what came
    # before, so the same seed at another temperature, or after a forced token, rolls the same dice.
    dice = torch.rand(n, N_PIXELS, generator=torch.Generator().manual_seed(seed)).to(device)

    model.eval()
    state = model.begin(label_t)
    canvas = torch.zeros(n, N_PIXELS, dtype=torch.long, device=device)  # (n, 784), valid before step t
    logits_all = torch.empty(n, N_PIXELS, k, device=device)
    for t in range(N_PIXELS):
        logits = model.step(state, t, canvas)  # (n, K)
        logits_all[:, t] = logits
        if t < prefix_t.shape[1]:
            token = prefix_t[:, t]
        elif t in forced:
            token = torch.full((n,), forced[t], dtype=torch.long, device=device)
        else:
            token = _inverse_cdf(torch.softmax(logits / temperature, dim=-1), dice[:, t])
        canvas[:, t] = token

    tokens = canvas
    probs = torch.softmax(logits_all / temperature, dim=-1)
    entropy = -torch.special.xlogy(probs, probs).sum(-1) / math.log(2)
    chosen = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return Trace(
        tokens=tokens.cpu().numpy(),
        logits=logits_all.cpu().numpy(),
        probs=probs.cpu().numpy(),
        entropy=entropy.cpu().numpy(),
        chosen_prob=chosen.cpu().numpy(),
        labels=label_t.cpu().numpy(),
        temperature=temperature,
        seed=seed,
        k=k,
        context=c,
        prefix_length=prefix_t.shape[1],
    )


def _inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The token whose cumulative-probability interval holds ``u``: a draw from ``probs`` (B, K)."""
    below = (probs.cumsum(-1) <= u.unsqueeze(1)).sum(-1)
    return below.clamp_(max=probs.shape[-1] - 1)


def _labels(model: nn.Module, n: int, labels) -> torch.Tensor:
    num_classes = getattr(model.config, "num_classes", 10)
    if labels is None:
        return torch.arange(n) % num_classes
    label_t = torch.as_tensor(labels, dtype=torch.long).flatten()
    if label_t.numel() == 1:
        label_t = label_t.expand(n).clone()
    if label_t.numel() != n:
        raise ValueError(f"got {label_t.numel()} labels for {n} images")
    if model.conditional and ((label_t < 0) | (label_t >= num_classes)).any():
        raise ValueError(f"class labels must be from 0 to {num_classes - 1}, got {sorted(set(label_t.tolist()))}")
    if not model.conditional:
        label_t = torch.zeros(n, dtype=torch.long)  # V1 and V2 ignore the class
    return label_t


def _prefix(prefix, n: int, k: int) -> torch.Tensor:
    if prefix is None:
        return torch.zeros(n, 0, dtype=torch.long)
    p = torch.as_tensor(np.asarray(prefix), dtype=torch.long)
    if p.dim() == 1:
        p = p.unsqueeze(0).expand(n, -1)
    if p.dim() != 2 or p.shape[0] != n or p.shape[1] > N_PIXELS:
        raise ValueError(f"prefix must be (P,) or ({n}, P) tokens with P <= {N_PIXELS}, got shape {tuple(p.shape)}")
    if p.numel() and (p.min() < 0 or p.max() >= k):
        raise ValueError(f"prefix tokens must be from 0 to {k - 1}")
    return p.contiguous()


def _forced(forced, k: int) -> dict[int, int]:
    forced = dict(forced or {})
    for step, token in forced.items():
        if not 0 <= int(step) < N_PIXELS or not 0 <= int(token) < k:
            raise ValueError(f"forced token {token} at step {step}: steps are 0..{N_PIXELS - 1}, tokens 0..{k - 1}")
    return {int(s): int(t) for s, t in forced.items()}
