"""The one sampler: B images advance pixel by pixel together, each with its own label, and leave a trace."""
from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .context import pad_tokens
from .data import dequantize
from .device import autocast, compute_dtype
from .inputs import whole_number, whole_numbers
from .models import IMAGE_SIZE, N_PIXELS, PixelMLP

MAX_SAMPLES = 1024  # images per call; more is a mistake rather than a wish
SEED_MAX = 2**31 - 1


@dataclass
class Trace:
    """Everything a generation did, step by step, as numpy arrays (image b, step t = flat pixel index)."""

    tokens: np.ndarray  # (B, 784) int64 chosen (or given) tokens
    logits: np.ndarray  # (B, 784, K) float32 raw model outputs, before temperature
    probs: np.ndarray  # (B, 784, K) float32 the distribution sampled from (softmax(logits / T), then top-k/top-p)
    entropy: np.ndarray  # (B, 784) float32 entropy of ``probs`` in bits
    chosen_prob: np.ndarray  # (B, 784) float32 probability of the chosen token
    labels: np.ndarray  # (B,) int64 class each image was conditioned on
    temperature: float
    seed: int
    k: int
    context: int
    prefix_length: int = 0  # steps copied from a given prefix rather than sampled
    top_k: int | None = None  # the filters ``probs`` went through (None: not used)
    top_p: float | None = None
    precision: str = "fp32"  # the matmul precision that computed ``logits``

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


def softmax_at(logits: np.ndarray, temperature: float, top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """``reshape`` for numpy logits: how a step's distribution changes with T, top-k and top-p."""
    return reshape(torch.from_numpy(np.asarray(logits, dtype=np.float32)), check_temperature(temperature), top_k, top_p).numpy()


def entropy_bits(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    return -(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0)).sum(axis=-1)


@torch.no_grad()
def sample(
    model: PixelMLP,
    n: int = 1,
    labels: int | Sequence[int] | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    prefix: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    forced: Mapping[int, int] | None = None,
    *,
    top_k: int | None = None,
    top_p: float | None = None,
    precision: str = "auto",
) -> Trace:
    """Generate ``n`` images in raster order and return their ``Trace``.

    labels: one class for all, one per image, or None (cycle through the classes; ignored by V1/V2).
    temperature: logits are divided by it before the softmax; must be finite and > 0.
    seed: makes the result repeatable; None draws one, kept in ``trace.seed``. Step t of image b always uses
        the same random number for a given seed, so runs that differ only in temperature, top-k/top-p, prefix
        or forced tokens are directly comparable.
    prefix: known tokens for the first pixels, (P,) for every image or (n, P): image completion.
    forced: ``{step: token}`` tokens imposed at given steps (the "what if" of the step-through view).
    top_k: keep only the k most probable bins at each step (None: all).
    top_p: keep only the smallest set of most probable bins whose probability reaches p (None: all).
    precision: "auto" (bf16 matmuls where the hardware has them, else fp32), "fp32" or "bf16". Softmax,
        cumulative sums and the dice are always fp32.
    """
    temperature = check_temperature(temperature)
    n = whole_number(n, "number of samples", 1, MAX_SAMPLES)
    k, c = model.k, model.config.context
    top_k = None if top_k is None else whole_number(top_k, "top-k", 1, k)
    top_p = None if top_p is None else check_top_p(top_p)
    device = next(model.parameters()).device
    dtype = compute_dtype(precision, device)
    label_t = _labels(model, n, labels).to(device)
    prefix_t = _prefix(prefix, n, k).to(device)
    forced = _forced(forced, k)
    seed = secrets.randbelow(SEED_MAX + 1) if seed is None else whole_number(seed, "seed", 0, SEED_MAX)
    # One uniform draw per (image, step), made up front: a step's randomness does not depend on what came
    # before, so the same seed at another temperature, or after a forced token, rolls the same dice.
    dice = torch.rand(n, N_PIXELS, generator=torch.Generator().manual_seed(seed)).to(device)

    was_training = model.training
    model.eval()
    table = model.fc1_table().contiguous()
    canvas = pad_tokens(torch.zeros(n, N_PIXELS, dtype=torch.long, device=device), c, model.start_token)  # (n, C+784)
    logits_all = torch.empty(n, N_PIXELS, k, device=device)
    position = torch.zeros(n, dtype=torch.long, device=device)
    with autocast(dtype, device):
        for t in range(N_PIXELS):
            logits = model.forward_with_table(table, canvas[:, t : t + c], position.fill_(t), label_t).float()  # (n, K)
            logits_all[:, t] = logits
            if t < prefix_t.shape[1]:
                token = prefix_t[:, t]
            elif t in forced:
                token = torch.full((n,), forced[t], dtype=torch.long, device=device)
            else:
                token = _inverse_cdf(reshape(logits, temperature, top_k, top_p), dice[:, t])
            canvas[:, c + t] = token
    model.train(was_training)

    tokens = canvas[:, c:]
    probs = reshape(logits_all, temperature, top_k, top_p)
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
        top_k=top_k,
        top_p=top_p,
        precision=str(dtype).removeprefix("torch.").replace("float32", "fp32").replace("bfloat16", "bf16"),
    )


def check_top_p(top_p) -> float:
    try:
        p = float(top_p)
    except (TypeError, ValueError):
        p = float("nan")
    if not (math.isfinite(p) and 0 < p <= 1):
        raise ValueError(f"top-p must be a number above 0 and at most 1, got {top_p!r}")
    return p


def reshape(logits: torch.Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """The distribution sampled from, over the last axis: softmax(logits / T), then top-k, then top-p.

    top-k keeps the k largest probabilities (ties: the lower bin first); top-p then keeps the shortest run of
    the remaining bins, most probable first, whose probability reaches p (at least one). The rest is renormalised.
    """
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_k is None and top_p is None:
        return probs
    order = torch.sort(probs, dim=-1, descending=True, stable=True)
    keep = torch.ones_like(probs, dtype=torch.bool)
    if top_k is not None:
        keep[..., top_k:] = False
    if top_p is not None:
        mass_before = (order.values * keep).cumsum(-1) - order.values * keep
        keep &= mass_before < top_p
        keep[..., 0] = True
    kept = torch.zeros_like(probs).scatter(-1, order.indices, order.values * keep)
    return kept / kept.sum(-1, keepdim=True)


def _inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The token whose cumulative-probability interval holds ``u``: a draw from ``probs`` (B, K).

    When rounding leaves the total just below ``u``, the draw is the last bin with probability, never a later one."""
    below = (probs.cumsum(-1) <= u.unsqueeze(1)).sum(-1)
    last_possible = probs.shape[-1] - 1 - (probs.flip(-1) > 0).int().argmax(-1)
    return torch.minimum(below, last_possible)


def _labels(model: PixelMLP, n: int, labels) -> torch.Tensor:
    num_classes = getattr(model.config, "num_classes", 10)
    if labels is None:
        return torch.arange(n) % num_classes
    high = num_classes - 1 if model.conditional else 2**31 - 1
    label_t = torch.from_numpy(whole_numbers(labels, "class labels", 0, high)).flatten()
    if label_t.numel() == 1:
        label_t = label_t.expand(n).clone()
    if label_t.numel() != n:
        raise ValueError(f"got {label_t.numel()} labels for {n} images")
    if not model.conditional:
        label_t = torch.zeros(n, dtype=torch.long)  # V1 and V2 ignore the class
    return label_t


def _prefix(prefix, n: int, k: int) -> torch.Tensor:
    if prefix is None:
        return torch.zeros(n, 0, dtype=torch.long)
    p = torch.from_numpy(whole_numbers(prefix, "prefix tokens", 0, k - 1))
    if p.dim() == 1:
        p = p.unsqueeze(0).expand(n, -1)
    if p.dim() != 2 or p.shape[0] != n or p.shape[1] > N_PIXELS:
        raise ValueError(f"prefix must be (P,) or ({n}, P) tokens with P <= {N_PIXELS}, got shape {tuple(p.shape)}")
    return p.contiguous()


def _forced(forced, k: int) -> dict[int, int]:
    if forced is not None and not isinstance(forced, Mapping):
        raise ValueError("forced tokens must be a mapping {step: token}")
    return {
        whole_number(step, "forced step", 0, N_PIXELS - 1): whole_number(token, "forced token", 0, k - 1)
        for step, token in (forced or {}).items()
    }
