"""The one training loop, for every model: each step draws a batch through ``model.training_loss`` (random
(image, pixel) pairs for the MLPs, whole images for V4) and takes one AdamW step."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .data import Dataset
from .device import PRECISION_NAMES, TRAINING_PRECISIONS, autocast, compute_dtype, pick_device
from .evaluation import evaluate
from .inputs import whole_number
from .interface import PixelModel
from .layers import ChannelDropout, Dropout
from .memory import check_batch_size

LR_SCHEDULES = ("constant", "cosine")
YIELD_SECONDS = 2.0  # the longest a step waits for ``yield_to``


@dataclass
class TrainConfig:
    """How long and how to train. Learning rate and weight decay default to the seed's for the model."""

    steps: int = 2000  # optimiser steps; each sees ``batch_size`` of the model's ``batch_unit``
    batch_size: int = 512  # (image, pixel) pairs for the MLPs (the seed's), whole images for V4 (use ~32)
    learning_rate: float | None = None  # None: the model's seed default (1e-3)
    weight_decay: float | None = None  # None: the model's seed default (V1 1e-2, V2/V3 1e-5)
    lr_schedule: str = "constant"  # "constant" (the seed) or "cosine" (5% warm-up, then cosine decay to 0)
    max_seconds: float | None = None  # also end after this long; the schedule then runs on the time used
    eval_every: int = 200  # steps between held-out checks (0: only at the end)
    eval_images: int = 50  # held-out images per check, evenly spread over the split (the final check too)
    report_seconds: float = 0.5  # at most this long between progress events
    seed: int = 0
    device: str | None = None  # None: CUDA, else MPS, else CPU
    precision: str = "auto"  # matmuls under bf16 autocast where the hardware has bf16 ("auto"), or "fp32"/"bf16"

    def learning_rate_for(self, model) -> float:
        """The AdamW learning rate of a run: this config's, else the model's own default."""
        return self.learning_rate if self.learning_rate is not None else model.learning_rate

    def weight_decay_for(self, model) -> float:
        """The AdamW weight decay of a run: this config's, else the model's own default."""
        return self.weight_decay if self.weight_decay is not None else model.weight_decay

    def validate(self) -> None:
        self.steps = whole_number(self.steps, "steps", 1, 10**9)
        self.batch_size = whole_number(self.batch_size, "batch size", 1, 65536)
        self.eval_every = whole_number(self.eval_every, "steps between held-out checks", 0, 10**9)
        self.eval_images = whole_number(self.eval_images, "held-out images per check", 1, 10**7)
        self.seed = whole_number(self.seed, "seed", 0, 2**63 - 1)
        if self.learning_rate is not None and not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1):
            raise ValueError(f"learning rate must be above 0 and at most 1, got {self.learning_rate!r}")
        if self.weight_decay is not None and not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight decay must be 0 or more, got {self.weight_decay!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"learning-rate schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.max_seconds is not None and not (math.isfinite(self.max_seconds) and self.max_seconds > 0):
            raise ValueError(f"time budget must be above 0 seconds, got {self.max_seconds!r}")
        if self.precision not in TRAINING_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(TRAINING_PRECISIONS)}, got {self.precision!r}")


@dataclass
class TrainEvent:
    """Progress of a run. ``loss`` is the mean training loss (bits/pixel) since the previous event."""

    step: int
    total_steps: int
    loss: float | None
    held_out_nll: float | None  # bits/pixel on the check images, at held-out checks only
    samples_per_second: float
    eta_seconds: float
    elapsed_seconds: float
    samples_seen: int
    learning_rate: float
    device: str
    finished: bool = False  # the last event of a run
    stopped: bool = False  # the run ended early on request


@dataclass
class TrainResult:
    steps: int
    samples_seen: int
    seconds: float
    device: str
    held_out_nll: float  # bits/pixel on the check images
    stopped: bool
    history: list[TrainEvent] = field(default_factory=list)
    precision: str = "fp32"  # the matmul precision it trained in


def train(
    model: PixelModel,
    dataset: Dataset,
    config: TrainConfig | None = None,
    on_event: Callable[[TrainEvent], None] | None = None,
    stop: threading.Event | None = None,
    yield_to: threading.Event | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``dataset.train`` and return what happened.

    ``on_event`` gets a ``TrainEvent`` at most every ``report_seconds`` and at each held-out check. Setting
    ``stop`` ends the run after the current step (well within a second); the model is left trained so far,
    in eval mode, and the result says ``stopped``. While ``yield_to`` is cleared, each step waits for it (at
    most ``YIELD_SECONDS``, so a run always moves on): a server lets requests go first this way.
    """
    config = config or TrainConfig()
    config.validate()
    check_batch_size(type(model), model.config, config.batch_size)
    device = pick_device(config.device)
    dtype = compute_dtype(config.precision, device)
    generator = torch.Generator(device=device).manual_seed(config.seed)  # the run's own: the global one is left alone
    model.to(device).train()
    for module in model.modules():
        if isinstance(module, (Dropout, ChannelDropout)):
            module.generator = generator
    lr = config.learning_rate_for(model)
    wd = config.weight_decay_for(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, **_fused(device))
    schedule = _schedule(config, lr)

    tokens = dataset.train.tokens(model.k).to(device)
    labels = dataset.train.labels.to(device)
    batch_loss = model.training_loss(tokens, labels, config.batch_size, generator)  # () -> mean nats per pixel
    check = dataset.held_out.subset(config.eval_images)

    history: list[TrainEvent] = []
    start = last_report = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    held_out = float("nan")
    step = 0

    def emit(held_out_nll=None, finished=False, stopped=False):
        nonlocal loss_sum, loss_count, last_report
        elapsed = time.perf_counter() - start
        rate = step * config.batch_size / elapsed if elapsed > 0 else 0.0
        event = TrainEvent(
            step=step,
            total_steps=config.steps,
            loss=(loss_sum.item() / loss_count / math.log(2)) if loss_count else None,
            held_out_nll=held_out_nll,
            samples_per_second=rate,
            eta_seconds=min(
                (config.steps - step) * config.batch_size / rate if rate > 0 else float("inf"),
                max(0.0, config.max_seconds - elapsed) if config.max_seconds is not None else float("inf"),
            ),
            elapsed_seconds=elapsed,
            samples_seen=step * config.batch_size,
            learning_rate=optimizer.param_groups[0]["lr"],
            device=str(device),
            finished=finished,
            stopped=stopped,
        )
        loss_sum, loss_count = torch.zeros((), device=device), 0
        history.append(event)
        if on_event is not None:
            on_event(event)
        last_report = time.perf_counter()  # after the callback: its own time is not a reporting interval

    stopped = False
    while step < config.steps:
        if stop is not None and stop.is_set():
            stopped = True
            break
        if yield_to is not None:
            yield_to.wait(YIELD_SECONDS)
        position = step  # in steps; with a time budget, the share of the time used if that is further on
        if config.max_seconds is not None:
            position = max(step, (time.perf_counter() - start) / config.max_seconds * config.steps)
            if position >= config.steps:
                break
        for group in optimizer.param_groups:
            group["lr"] = schedule(position)
        with autocast(dtype, device):
            loss = batch_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        loss_count += 1
        step += 1
        if step == config.steps:
            break  # the final event below reports this step
        if config.eval_every and step % config.eval_every == 0:
            held_out = evaluate(model, check)
            model.train()
            emit(held_out)
        elif time.perf_counter() - last_report >= config.report_seconds:
            emit()

    model.eval()
    held_out = evaluate(model, check) if step > 0 else float("nan")
    emit(held_out, finished=True, stopped=stopped)
    return TrainResult(
        steps=step,
        samples_seen=step * config.batch_size,
        seconds=history[-1].elapsed_seconds,
        device=str(device),
        held_out_nll=held_out,
        stopped=stopped,
        history=history,
        precision=PRECISION_NAMES[dtype],
    )


def _fused(device: torch.device) -> dict:
    """The fused AdamW kernel where PyTorch has one (CPU, CUDA, MPS): the same update, fewer passes."""
    return {"fused": True} if device.type in ("cpu", "cuda", "mps") else {}


def _schedule(config: TrainConfig, lr: float) -> Callable[[float], float]:
    """Learning rate at a position in the run, measured in steps."""
    if config.lr_schedule == "constant":
        return lambda step: lr
    warmup = max(1, config.steps // 20)

    def cosine(step: float) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, config.steps - warmup)
        return lr * 0.5 * (1 + math.cos(math.pi * progress))

    return cosine
