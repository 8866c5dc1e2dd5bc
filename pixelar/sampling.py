"""The one sampler: B images advance pixel by pixel together, each with its own label, and leave a trace.

Every model samples through ``state = model.begin(labels, dtype)`` and ``logits = model.step(state, t, canvas)``.
Several callers' requests can share one run (``sample_many``) and still get exactly what they would get alone.
"""
from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .data import dequantize
from .device import PRECISION_DTYPES
from .inputs import number, whole_number, whole_numbers, within
from .layers import IMAGE_SIZE, N_PIXELS
from .planner import plan

MAX_SAMPLES = 1024  # images per call; more is a mistake rather than a wish
SEED_MAX = 2**31 - 1
TEMPERATURE_RANGE = (0.001, 10_000.0)  # beyond these the float32 softmax is greedy or uniform anyway


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
    context: int  # earlier pixels the model sees at each step; 784 (V4): all of them, no start tokens
    prefix_length: int = 0  # steps copied from a given prefix rather than sampled
    top_k: int | None = None  # the filters ``probs`` went through (None: not used)
    top_p: float | None = None
    precision: str = "fp32"  # the matmul precision that computed ``logits``

    def images(self) -> np.ndarray:
        """De-quantised images (B, 28, 28) in [0, 1]."""
        return dequantize(self.tokens, self.k).reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.float32)

    def __len__(self) -> int:
        return len(self.tokens)


def check_temperature(temperature, name: str = "temperature", bounds: tuple[float, float] = TEMPERATURE_RANGE) -> float:
    """A temperature from ``bounds`` (the core's ``TEMPERATURE_RANGE``, or narrower), or a ValueError naming ``name``."""
    return number(temperature, name, *within(bounds, TEMPERATURE_RANGE, name))


def check_count(n, name: str = "number of samples", high: int = MAX_SAMPLES) -> int:
    """A number of images from 1 to ``high`` (at most the core's ``MAX_SAMPLES``), or a ValueError naming ``name``."""
    return whole_number(n, name, *within((1, high), (1, MAX_SAMPLES), name))


def check_seed(seed, name: str = "seed") -> int:
    """A seed from 0 to ``SEED_MAX``, or a ValueError naming ``name``."""
    return whole_number(seed, name, 0, SEED_MAX)


def softmax_at(logits: np.ndarray, temperature: float, top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """``reshape`` for numpy logits: how a step's distribution changes with T, top-k and top-p."""
    return reshape(torch.from_numpy(np.asarray(logits, dtype=np.float32)), check_temperature(temperature), top_k, top_p).numpy()


def entropy_bits(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    return -(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0)).sum(axis=-1)


@dataclass(frozen=True)
class Request:
    """One caller's checked wish: ``n`` images with their labels, temperature, filters, dice and given tokens."""

    n: int
    labels: torch.Tensor  # (n,) int64
    temperature: float
    seed: int
    given: torch.Tensor  # (n, 784) int64: a prefix or forced token, or -1 where the step is sampled
    prefix_length: int
    top_k: int | None
    top_p: float | None

    @classmethod
    def of(cls, model, n=1, labels=None, temperature=1.0, seed=None, prefix=None, forced=None, top_k=None, top_p=None):
        """Check every argument as ``sample`` documents it; a ValueError names the bad one."""
        temperature = check_temperature(temperature)
        n = check_count(n)
        k = model.k
        top_k = None if top_k is None else whole_number(top_k, "top-k", 1, k)
        top_p = None if top_p is None else check_top_p(top_p)
        label_t = _labels(model, n, labels)
        prefix_t = _prefix(prefix, n, k)
        given = torch.full((n, N_PIXELS), -1, dtype=torch.long)
        given[:, : prefix_t.shape[1]] = prefix_t
        for step, token in _forced(forced, k).items():
            if step >= prefix_t.shape[1]:
                given[:, step] = token
        seed = secrets.randbelow(SEED_MAX + 1) if seed is None else check_seed(seed)
        return cls(n, label_t, temperature, seed, given, prefix_t.shape[1], top_k, top_p)

    def dice(self) -> torch.Tensor:
        """One uniform per (image, step), drawn up front from the seed alone: (n, 784)."""
        return torch.rand(self.n, N_PIXELS, generator=torch.Generator().manual_seed(self.seed))


@torch.no_grad()
def sample(
    model,
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
    temperature: logits are divided by it before the softmax; from 0.001 to 10,000.
    seed: makes the result repeatable; None draws one, kept in ``trace.seed``. Step t of image b always uses
        the same random number for a given seed, so runs that differ only in temperature, top-k/top-p, prefix
        or forced tokens are directly comparable.
    prefix: known tokens for the first pixels, (P,) for every image or (n, P): image completion.
    forced: ``{step: token}`` tokens imposed at given steps (the "what if" of the step-through view).
    top_k: keep only the k most probable bins at each step (None: all).
    top_p: keep only the smallest set of most probable bins whose probability reaches p (None: all).
    precision: "auto" (the fastest accurate path here, timed once: ``pixelar.planner``), "fp32", "bf16" or
        "int8" (V1-V3 on a CPU). Softmax, cumulative sums and the dice are always fp32.
    """
    request = Request.of(model, n, labels, temperature, seed, prefix, forced, top_k, top_p)
    return sample_many(model, [request], precision)[0]


@torch.no_grad()
def sample_many(model, requests: Sequence[Request], precision: str = "auto", workers: int = 1) -> list[Trace]:
    """Run several requests for one model as one batch; each gets exactly the trace it would get alone.

    The precision path and the tile size come from ``pixelar.planner`` (timed once per model shape and process).
    The model runs on tiles of that many rows (the last one padded): a matmul's rounding may depend on how many rows
    it has, so a row's logits must not depend on how many other images share the run (the planner lets the tile
    follow the run's size only where it measured that the tile's size changes no bits). Tiles are independent, so
    ``workers`` threads (one torch thread each) may each take a share of them, with the result of one worker
    of one torch thread.
    """
    device = next(model.parameters()).device
    path = plan(model, precision)
    dtype = PRECISION_DTYPES[path.precision]
    n = sum(r.n for r in requests)
    tile_rows = path.tile_for(n)
    rows = -(-n // tile_rows) * tile_rows
    labels = _padded(torch.cat([r.labels for r in requests]), rows, 0).to(device)
    given = _padded(torch.cat([r.given for r in requests]), rows, -1).to(device)
    dice = _padded(torch.cat([r.dice() for r in requests]), rows, 0.5).to(device)

    def per_row(values: list[float], fill: float) -> torch.Tensor:
        """One value per request, repeated for each of its rows: (rows,)."""
        repeated = torch.cat([torch.full((r.n,), v, dtype=torch.float32) for r, v in zip(requests, values)])
        return _padded(repeated, rows, fill).to(device)

    temperature = per_row([r.temperature for r in requests], 1.0).unsqueeze(1)
    top_k = per_row([r.top_k or model.k for r in requests], model.k).long()
    top_p = per_row([math.inf if r.top_p is None else r.top_p for r in requests], math.inf)

    was_training = model.training
    model.eval()
    tiles = [slice(start, start + tile_rows) for start in range(0, rows, tile_rows)]
    states = [model.begin(labels[tile], dtype) for tile in tiles]
    canvas = torch.zeros(rows, N_PIXELS, dtype=torch.long, device=device)  # (rows, 784), valid before step t
    logits_all = torch.empty(rows, N_PIXELS, model.k, device=device)

    def run(share: range) -> None:
        """All steps of the tiles ``share``, rows ``mine`` (contiguous): a worker's part."""
        mine = slice(tiles[share[0]].start, tiles[share[-1]].stop)
        for t in range(N_PIXELS):
            for i in share:
                logits_all[tiles[i], t] = model.step(states[i], t, canvas[tiles[i]])
            drawn = _inverse_cdf(reshape(logits_all[mine, t], temperature[mine], top_k[mine], top_p[mine]), dice[mine, t])
            canvas[mine, t] = torch.where(given[mine, t] >= 0, given[mine, t], drawn)

    k = max(1, min(workers, len(tiles)))
    shares = [range(len(tiles) * w // k, len(tiles) * (w + 1) // k) for w in range(k)]  # contiguous, none empty
    if len(shares) == 1:
        run(shares[0])
    else:
        with ThreadPoolExecutor(len(shares), initializer=torch.set_num_threads, initargs=(1,)) as pool:
            list(pool.map(run, shares))  # list(): a worker's exception is raised here
    model.train(was_training)

    probs = reshape(logits_all, temperature.unsqueeze(1), top_k.unsqueeze(1), top_p.unsqueeze(1))
    entropy = -torch.special.xlogy(probs, probs).sum(-1) / math.log(2)
    chosen = probs.gather(-1, canvas.unsqueeze(-1)).squeeze(-1)
    arrays = [x[:n].cpu().numpy() for x in (canvas, logits_all, probs, entropy, chosen, labels)]
    traces, start = [], 0
    for r in requests:
        part = [a[start : start + r.n].copy() for a in arrays]  # its own rows only: a kept trace holds no batch
        start += r.n
        traces.append(Trace(
            *part, temperature=r.temperature, seed=r.seed, k=model.k, context=model.config.context,
            prefix_length=r.prefix_length, top_k=r.top_k, top_p=r.top_p, precision=path.precision,
        ))
    return traces


def _padded(x: torch.Tensor, rows: int, fill) -> torch.Tensor:
    """``x`` with rows of ``fill`` added to reach ``rows``."""
    return torch.cat([x, torch.full((rows - len(x), *x.shape[1:]), fill, dtype=x.dtype)])


def check_top_p(top_p, name: str = "top-p", note: str = "") -> float:
    """A top-p above 0 and at most 1, or a ValueError naming ``name`` (``note``: said after the range)."""
    return number(top_p, name, 0, 1, above_low=True, note=note)


def reshape(logits: torch.Tensor, temperature, top_k=None, top_p=None) -> torch.Tensor:
    """The distribution sampled from, over the last axis: softmax(logits / T), then top-k, then top-p.

    top-k keeps the k largest probabilities (ties: the lower bin first); top-p then keeps the shortest run of
    the remaining bins, most probable first, whose probability reaches p (at least one); the rest is
    renormalised. Each argument is a number, None (no filter) or a tensor broadcasting against the rows.
    A row without a filter is exactly ``softmax(logits / T)``, whatever the other rows ask for.
    """
    logits = logits.float()
    probs = torch.softmax((logits - logits.amax(-1, keepdim=True)) / temperature, dim=-1)  # no inf/inf at tiny T
    k = probs.shape[-1]
    top_k = torch.as_tensor(k if top_k is None else top_k, device=probs.device)
    top_p = torch.as_tensor(math.inf if top_p is None else top_p, dtype=torch.float32, device=probs.device)
    filtered = (top_k < k) | (top_p <= 1)
    if not filtered.any():
        return probs
    order = torch.sort(probs, dim=-1, descending=True, stable=True)
    in_top_k = torch.arange(k, device=probs.device) < top_k.unsqueeze(-1)
    kept_values = order.values * in_top_k
    keep = in_top_k & (kept_values.cumsum(-1) - kept_values < top_p.unsqueeze(-1))
    keep[..., 0] = True
    kept = torch.zeros_like(probs).scatter(-1, order.indices, order.values * keep)
    return torch.where(filtered.unsqueeze(-1), kept / kept.sum(-1, keepdim=True), probs)


def _inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The token whose cumulative-probability interval holds ``u``: a draw from ``probs`` (B, K).

    When rounding leaves the total just below ``u``, the draw is the last bin with probability, never a later one."""
    below = (probs.cumsum(-1) <= u.unsqueeze(1)).sum(-1)
    last_possible = probs.shape[-1] - 1 - (probs.flip(-1) > 0).int().argmax(-1)
    return torch.minimum(below, last_possible)


def _labels(model, n: int, labels) -> torch.Tensor:
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
