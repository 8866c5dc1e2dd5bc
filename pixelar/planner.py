"""The sampling path of a model on this machine, chosen by timing: a precision (fp32, bf16, int8) and a row tile.

No precision is fastest on every CPU: int8 won on an AVX-512 VNNI AMD, pre-packed bf16 on an AMX Intel, and bf16
costs 4x fp32 on a CPU without it. So, as FFTW's planner and cuDNN's benchmark mode do, the first time a model
shape is sampled in a process, each path the model has runs its real step on each tile size for a fraction of a
second; the fastest (by ``score``) whose probabilities stay within ``MAX_PROB_DIFF`` of fp32's wins, is logged
once with the timings, and is kept for the process. Every run of that model then uses that path, so a request
merged with others is bit-identical to the same request alone.

The tile: a matmul's rounding may depend on how many rows it has, so by default every run uses the one tile that
``score`` picks (a class's tile, which a lone user also pays for). But the timing also finds out whether this
machine's kernels give a row the same bits in every tile size (it compares the rows the tiles share). Where they do,
each run takes the tiles that are cheapest for its own number of images (``Plan.tile_for``): 16 digits for one user
run in a 16-row tile, a class's merged batch in large ones, and merged still equals alone.

``PIXELAR_PLAN=int8:16`` (a precision and a tile) skips the timing: "auto" is that precision where the model has
it (else fp32), and every precision uses that tile. Runs in different processes are then identical too.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

import torch

from .device import PRECISION_DTYPES, PRECISIONS
from .layers import N_PIXELS, int8_available

log = logging.getLogger(__name__)

TILES = (16, 32, 64, 128)  # rows per model call; a run of n images pays for ceil(n / tile) tiles
ONE_USER, CLASS, CLASS_PATIENCE = 16, 480, 6.0  # a class's 480 images may take 6x one user's 16 (3 s vs 0.5 s)
MAX_PROB_DIFF = 0.02  # the most a path may move any probability from fp32's on the timing tile
SECONDS_PER_TIMING = 0.05  # one (path, tile) timing stops after this (and at least 3 steps) ...
STEPS_PER_TIMING = 28  # ... or after one image row, whichever comes first
SLOW = 3.0  # a path this many times slower than fp32 on a tile is not timed on larger tiles


@dataclass(frozen=True)
class Plan:
    """How a model samples here: the precision path, the rows per model call, and the measurements behind them."""

    precision: str  # "fp32", "bf16" or "int8"
    tile: int
    seconds: dict = field(default_factory=dict)  # {(precision, tile): seconds per model call (one step of a tile)}
    prob_diff: dict = field(default_factory=dict)  # {precision: largest probability difference from fp32}
    tile_exact: bool = False  # measured: a row's logits have the same bits in every tile size this precision ran

    def tile_for(self, images: int) -> int:
        """The rows per call for a run of ``images``: the plan's tile, or, where tiles are exact, the timed tile
        with which the run's calls take least time."""
        timed = {tile: took for (precision, tile), took in self.seconds.items() if precision == self.precision}
        if not self.tile_exact or not timed:
            return self.tile
        return _cheapest_tile(images, timed)

    def describe(self) -> str:
        timings = ", ".join(f"{p}@{t} {s * 1e3:.2f}" for (p, t), s in self.seconds.items())
        diffs = ", ".join(f"{p} {d:.4f}" for p, d in self.prob_diff.items())
        tiles = "each run takes its cheapest tile (rows are exact in every tile)" if self.tile_exact else \
            "every run uses it (rows are not exact across tiles, or not checked)"
        return f"{self.precision} at {self.tile} rows per call, {tiles} (ms per call: {timings or 'not timed'}; " \
               f"largest probability difference from fp32: {diffs or 'not checked'})"


_measured: dict[tuple, tuple[dict, dict, dict]] = {}  # per model shape and device: (seconds, prob_diff, exact)
_lock = threading.Lock()


def paths(model, device: torch.device) -> list[str]:
    """The precision paths ``model`` can sample with on ``device``, fp32 first."""
    usable = {"fp32": True, "bf16": device.type in ("cpu", "cuda"), "int8": int8_available(device)}
    return [p for p in model.sampling_precisions if usable[p]]


def plan(model, precision: str = "auto") -> Plan:
    """The path ``model`` samples with for ``precision``: every path is measured on first use of the model's
    shape, then the measurements are kept; an explicit precision gets its own best tile from them."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = next(model.parameters()).device
    usable = paths(model, device)
    if precision != "auto" and precision not in usable:
        raise ValueError(f"precision {precision} is not available for {model.name} on {device.type}; use {', '.join(['auto', *usable])}")
    if os.environ.get("PIXELAR_PLAN"):
        return _pinned(os.environ["PIXELAR_PLAN"], precision, usable)
    key = (type(model), repr(model.config), str(device))
    with _lock:
        if key not in _measured:
            _measured[key] = _measure(model, usable)
            log.info("sampling %s %s: auto is %s", model.name, model.config, _choose(*_measured[key], usable, True).describe())
    if precision == "auto":
        return _choose(*_measured[key], usable, True)
    return _choose(*_measured[key], [precision], False)


def _pinned(pinned: str, precision: str, usable: list[str]) -> Plan:
    name, _, tile = pinned.partition(":")
    if name not in PRECISIONS[1:] or not tile.isdigit() or int(tile) < 1:
        raise ValueError(f"PIXELAR_PLAN must be a precision and a tile, e.g. int8:16, got {pinned!r}")
    if precision == "auto":
        precision = name if name in usable else "fp32"
    return Plan(precision, int(tile))


@torch.no_grad()
def _measure(model, candidates: list[str]) -> tuple[dict, dict, dict]:
    """Time each path on each tile with the model's real steps and check each against fp32: (seconds, prob_diff,
    exact), where exact[precision] says whether the rows every tile shares had the same bits in every tile."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dice = torch.Generator().manual_seed(0)
    canvas = torch.randint(model.k, (max(TILES), N_PIXELS), generator=dice).to(device)  # (rows, 784) noise
    labels = (torch.arange(max(TILES)) % getattr(model.config, "num_classes", 10)).to(device)
    seconds, prob_diff, reference, exact = {}, {}, {}, {}  # seconds per model call
    for precision in candidates:
        smallest = None  # this precision's logits on the smallest tile: (steps, TILES[0], K)
        for tile in TILES:
            took, logits = _time(model, PRECISION_DTYPES[precision], labels[:tile], canvas[:tile])
            seconds[precision, tile] = took
            if smallest is None:
                smallest, exact[precision] = logits, True
            else:
                steps = min(len(logits), len(smallest))
                shared = logits[:steps, : TILES[0]]
                exact[precision] = exact[precision] and torch.equal(shared, smallest[:steps])
            if precision == "fp32":
                reference[tile] = logits
            elif tile in reference:
                steps = min(len(logits), len(reference[tile]))
                diff = (logits[:steps].softmax(-1) - reference[tile][:steps].softmax(-1)).abs().max().item()
                prob_diff[precision] = max(prob_diff.get(precision, 0.0), diff)
            if ("fp32", tile) in seconds and seconds[precision, tile] > SLOW * seconds["fp32", tile]:
                break
    model.train(was_training)
    return seconds, prob_diff, exact


def _choose(seconds: dict, prob_diff: dict, exact: dict, candidates: list[str], accurate_only: bool) -> Plan:
    """The best-scoring path among ``candidates`` (if ``accurate_only``, among the accurate ones): a precision whose
    tiles are exact is scored with each run on its cheapest tile, and its plan's tile is a class's; any other is
    scored, and planned, one tile at a time."""
    allowed = [key for key in seconds if key[0] in candidates and (not accurate_only or prob_diff.get(key[0], 0.0) <= MAX_PROB_DIFF)]
    options = []  # (score, precision, tile)
    for precision in dict.fromkeys(p for p, _ in allowed):
        tiles = {tile: seconds[path, tile] for path, tile in allowed if path == precision}
        if exact.get(precision, False):
            options.append((score(tiles), precision, _cheapest_tile(CLASS, tiles)))
        else:
            options += [(score({tile: took}), precision, tile) for tile, took in tiles.items()]
    _, precision, tile = min(options, key=lambda option: option[0])
    return Plan(precision, tile, seconds, prob_diff, exact.get(precision, False))


def score(tiles: dict[int, float]) -> float:
    """What a path costs the app when a run may take any of ``tiles`` ({rows: seconds per call}): the longer of one
    user's wait and a class's wait over its patience, each on its cheapest tile."""
    def wait(images: int) -> float:
        tile = _cheapest_tile(images, tiles)
        return _run_seconds(images, tile, tiles[tile])

    return max(wait(ONE_USER), wait(CLASS) / CLASS_PATIENCE)


def _cheapest_tile(images: int, tiles: dict[int, float]) -> int:
    """The tile of ``tiles`` ({rows: seconds per call}) on which a run of ``images`` takes least time (ties: the
    smaller tile)."""
    return min(tiles, key=lambda tile: (_run_seconds(images, tile, tiles[tile]), tile))


def _run_seconds(images: int, tile: int, seconds_per_call: float) -> float:
    return -(-images // tile) * seconds_per_call


def _time(model, dtype: torch.dtype, labels: torch.Tensor, canvas: torch.Tensor) -> tuple[float, torch.Tensor]:
    """The fastest step (one model call) of a fresh run on these rows, after one untimed warm-up step (the
    fastest: other processes on a shared machine only ever add time), and its logits (steps, rows, K)."""
    sync = torch.cuda.synchronize if canvas.device.type == "cuda" else lambda: None
    model.step(model.begin(labels, dtype), 0, canvas)
    state = model.begin(labels, dtype)
    logits, times, start = [], [], time.perf_counter()
    for t in range(STEPS_PER_TIMING):
        sync()
        began = time.perf_counter()
        logits.append(model.step(state, t, canvas))
        sync()
        times.append(time.perf_counter() - began)
        if t >= 2 and time.perf_counter() - start > SECONDS_PER_TIMING:
            break
    return min(times), torch.stack(logits)
