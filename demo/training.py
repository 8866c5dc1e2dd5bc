"""The app's training runs: ``pixelar.train`` in a background thread, the budgets a run can have, and the
training speed measured on this server (for expected times)."""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import torch

import pixelar
from pixelar.memory import check_batch_size, max_batch_size
from pixelar.interface import PixelModel
from pixelar.models import N_PIXELS

from .common import check_whole
from .data import DATASET_NAMES, DataSets

SEED_RECIPE_SAMPLES = 5_000_000 * 20  # the seed trains on 5M (image, pixel) pairs for 20 epochs
LONG_RUN_SECONDS = 30 * 60  # longer runs need a tick in the confirmation box
ASSUMED_RATE = {"pixels": 13_000, "images": 50}  # samples/s until this server has measured its own (2 CPU cores)
CHECK_IMAGES = 20  # held-out images per check during a run (and for the final figure)
DEFAULT_MAX_TRAIN_MINUTES = 20.0  # a shared server's cap on one run; --max-train-minutes / PIXELAR_MAX_TRAIN_MINUTES
TRAINING_THREADS = 1  # one core for training, one for requests (demo/serving.py), on a 2-core server
MEASURE_SECONDS = 4.0  # a first speed measurement long enough to be past the warm-up steps
SAMPLES_AT_CHECK = 10  # images drawn at each held-out check (one of each class for V3)
CONTEXTS = (1, 7, 28, 56, 84)  # context lengths offered for V1-V3 (the seed's is 28)
K_RANGE = (2, 256)  # intensity bins
MAX_WAITING = 30  # runs in line behind the running one (a class of 30 each pressing Start once); more are refused
POLL_SECONDS = 2.0  # how often a waiting run's page asks for its turn (a short event, no thread held between)
STALE_SECONDS = 10 * POLL_SECONDS  # a waiting run whose page has not asked for this long is dropped (page closed)


@dataclass(frozen=True)
class Budget:
    name: str
    steps: int
    batch_size: int = 512


BUDGETS = {  # V1-V3: a step sees 512 random (image, pixel) pairs
    "quick": Budget("Quick", 1_000),  # about a minute on 2 CPU cores
    "standard": Budget("Standard", 15_000),  # about 10 minutes
    "long": Budget("The seed's recipe (5M pairs × 20)", -(-SEED_RECIPE_SAMPLES // 512)),
}
IMAGE_BUDGETS = {  # V4: a step sees 32 whole images (784 pixels each), about 50 images/s on one CPU core
    "quick": Budget("Quick", 36, 8),  # 288 images, under a minute on one core of an AVX2 laptop: the loss falls from 4 to ~0.8 bits
    "standard": Budget("Standard", 1_000, 32),  # 32,000 images
    "long": Budget("Long", 2_500, 32),  # the first shipped V4's budget: 0.4232 bits/pixel
}


def unit(kind: str) -> str:
    """What one training sample of ``kind`` is: "pixels" ((image, pixel) pairs, V1-V3) or "images" (V4)."""
    return pixelar.MODELS[kind].batch_unit


def budgets(kind: str) -> dict[str, Budget]:
    return IMAGE_BUDGETS if unit(kind) == "images" else BUDGETS


def samples_word(kind: str) -> str:
    return "images" if unit(kind) == "images" else "samples"


def check_every(steps: int) -> int:
    """Steps between the held-out checks of an app run: about eight a run, 50 to 1,000 steps apart."""
    return min(1000, max(50, steps // 8))


def checks_in_training(done: int, planned: int) -> int:
    """Held-out checks on a run's training clock after ``done`` of its ``planned`` steps: one every ``check_every``
    steps and the last (the untrained model's check comes before the clock starts)."""
    return 1 + (done - 1) // check_every(planned) if done else 0


def run_seconds(steps: int, batch_size: int, rate: float, check_seconds: float = 0.0) -> float:
    """A run's expected time: its samples at ``rate`` samples/s, plus its held-out checks (the untrained model's,
    then ``checks_in_training``) at ``check_seconds`` each."""
    return steps * batch_size / rate + (1 + checks_in_training(steps, steps)) * check_seconds


def budget_choices(kind: str, rate: float | None, check_seconds: float = 0.0) -> list[tuple[str, str]]:
    """The budget picker's labels for ``kind``, with each preset's expected time at ``rate`` samples/s, and
    ``check_seconds`` per held-out check, if known."""
    choices = []
    for key, b in budgets(kind).items():
        total = b.steps * b.batch_size
        size = f"{total / 1e6:.3g}M samples" if unit(kind) == "pixels" else f"{total:,} images"
        label = f"{b.name} · {size}"
        if rate:
            label += f" · ≈ {format_seconds(run_seconds(b.steps, b.batch_size, rate, check_seconds))}"
        choices.append((label, key))
    return choices


@dataclass(frozen=True)
class Shape:
    """The model knobs of the Train tab: context length (V1-V3) and intensity bins K."""

    context: int
    k: int

    @classmethod
    def default(cls, kind: str) -> Shape:
        """The model's own shape: the seed's for V1-V3, the whole past for V4."""
        config = pixelar.MODELS[kind].config_class()
        return cls(context=config.context, k=config.k)

    @classmethod
    def check(cls, kind: str, context, k) -> Shape:
        """A shape for ``kind``, or a ValueError naming the bad field; V4 always sees the whole past."""
        k = check_whole(k, "K bins", *K_RANGE)
        if pixelar.MODELS[kind].sees_whole_past:
            return cls(context=N_PIXELS, k=k)
        context = check_whole(context, "Context length", 1, max(CONTEXTS))
        return cls(context=context, k=k)

    def overrides(self, kind: str) -> dict:
        return {"k": self.k} if pixelar.MODELS[kind].sees_whole_past else {"context": self.context, "k": self.k}

    def config(self, kind: str):
        return pixelar.MODELS[kind].config_class(**self.overrides(kind))

    def max_batch_size(self, kind: str) -> int:
        """The largest batch this shape trains on within the core's memory budget."""
        return max_batch_size(pixelar.MODELS[kind], self.config(kind))

    def build(self, kind: str):
        return pixelar.build_model(kind, **self.overrides(kind))

    def describe(self, kind: str) -> str:
        return f"K {self.k}" if pixelar.MODELS[kind].sees_whole_past else f"context {self.context} · K {self.k}"


@dataclass(frozen=True)
class Plan:
    """A checked request for a run, handed from Start to the queued training event."""

    kind: str
    dataset: str
    config: pixelar.TrainConfig
    shape: Shape

    @classmethod
    def check(cls, kind, dataset, steps, batch_size, learning_rate, shape: Shape | None = None) -> Plan:
        """A plan from the Train tab's inputs, or a ValueError that says what is wrong."""
        if kind not in pixelar.MODELS:
            raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(pixelar.MODELS)}")
        if dataset not in DATASET_NAMES:
            raise ValueError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASET_NAMES)}")
        if not isinstance(steps, int) or not isinstance(batch_size, int):
            raise ValueError("steps and batch size must be whole numbers")
        config = pixelar.TrainConfig(
            steps=steps, batch_size=batch_size, learning_rate=learning_rate,
            eval_every=check_every(steps), eval_images=CHECK_IMAGES,
        )
        config.validate()
        shape = shape or Shape.default(kind)
        check_batch_size(pixelar.MODELS[kind], shape.config(kind), batch_size)
        return cls(kind, dataset, config, shape)

    @property
    def samples(self) -> int:
        return self.config.steps * self.config.batch_size


def format_seconds(seconds: float | None) -> str:
    """A duration for people: "45 s", "12 min 05 s", "2.2 h"."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    if seconds < 0.5:
        return "under a second"
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds / 3600:.1f} h"


class Throughput:
    """How long runs take on this server, per model kind and shape: training samples per second and the time of one
    held-out check (CHECK_IMAGES scored, SAMPLES_AT_CHECK drawn), measured on first use in the asking thread (one
    compute thread, as a run has), then updated by every real run."""

    def __init__(self, data_sets: DataSets):
        self.data_sets = data_sets
        self.rates: dict[tuple[str, Shape], float] = {}
        self.check_seconds: dict[tuple[str, Shape], float] = {}
        self._lock = threading.Lock()

    def expected_seconds(self, plan: Plan) -> float:
        """How long ``plan`` should take here (assuming 2-core speed until this server has measured its own)."""
        key = (plan.kind, plan.shape)
        rate = self.rates.get(key, ASSUMED_RATE[unit(plan.kind)])
        return run_seconds(plan.config.steps, plan.config.batch_size, rate, self.check_seconds.get(key, 0.0))

    def rate(self, kind: str, shape: Shape, server_busy: bool) -> float | None:
        """Samples/s for ``kind`` at ``shape``; None if unknown and the server is too busy training to measure
        fairly."""
        with self._lock:
            if (kind, shape) not in self.rates and not server_busy:
                dataset, _ = self.data_sets.load("mnist-5k")
                config = pixelar.TrainConfig(steps=10**6, batch_size=budgets(kind)["quick"].batch_size,
                                             max_seconds=MEASURE_SECONDS, eval_every=0, eval_images=1, report_seconds=3600)
                model = shape.build(kind)
                result = pixelar.train(model, dataset, config)
                started = time.perf_counter()
                pixelar.evaluate(model, dataset.held_out.subset(CHECK_IMAGES))
                pixelar.sample(model, SAMPLES_AT_CHECK, temperature=1.0, seed=0)
                self.check_seconds[(kind, shape)] = time.perf_counter() - started
                self.rates[(kind, shape)] = result.samples_seen / result.seconds
            return self.rates.get((kind, shape))

    def record(self, plan: Plan, result: pixelar.TrainResult) -> None:
        """Keep a real run's training rate, its checks' time taken out (only at the presets' batch size: the rate
        depends on it). The check before training is not on the run's clock."""
        key, steps = (plan.kind, plan.shape), result.steps
        training = result.seconds - checks_in_training(steps, plan.config.steps) * self.check_seconds.get(key, 0.0)
        if plan.config.batch_size == budgets(plan.kind)["quick"].batch_size and training > 0 and steps:
            self.rates[key] = result.samples_seen / training


class TrainingSlot:
    """The server's one training run and the line of runs waiting for it: first come, first served, each run stopped at
    ``max_minutes`` (None: no cap), at most ``max_waiting`` in line.

    A shared server has one slot so that training never takes more than its one core (see ``demo/serving.py``);
    the cap keeps one user from holding it for hours while a class waits. A waiting run is a ticket here, not a
    blocked worker: its page asks (``poll``) every few seconds, takes the slot when it is first in line and the slot
    is free, and is dropped if its page stops asking for ``stale_seconds`` (closed).
    """

    def __init__(self, max_minutes: float | None = DEFAULT_MAX_TRAIN_MINUTES, max_waiting: int = MAX_WAITING,
                 stale_seconds: float = STALE_SECONDS, clock=time.monotonic):
        if max_minutes is not None and not max_minutes > 0:
            raise ValueError(f"the training cap must be a positive number of minutes, got {max_minutes!r}")
        self.max_minutes, self.max_waiting, self.stale_seconds, self.clock = max_minutes, max_waiting, stale_seconds, clock
        self._holder: object | None = None
        self._started = False  # whether the holder's run has begun (``begin``)
        self._line: dict[object, float] = {}  # waiting tickets, first come first -> when their page last asked
        self._lock = threading.Lock()

    def join(self, ticket: object) -> int:
        """Take the free slot (0) or a place in line (1: next); a ValueError if the line is full."""
        with self._lock:
            self._drop_stale()
            if self._holder is None and not self._line:
                self._holder, self._started = ticket, False
                return 0
            if len(self._line) >= self.max_waiting:
                raise ValueError(f"The training line is full ({self.max_waiting} runs waiting, each at most "
                                 f"{self.max_minutes or '?'} minutes): try again later.")
            self._line[ticket] = self.clock()
            return len(self._line)

    def poll(self, ticket: object) -> int | None:
        """0 if ``ticket`` holds the slot (taking it if it is free and the ticket first in line), else its place in
        line, or None if it is in neither (it left, or was dropped)."""
        with self._lock:
            self._drop_stale()
            if ticket is self._holder:
                return 0
            if ticket not in self._line:
                return None
            self._line[ticket] = self.clock()
            if self._holder is None and next(iter(self._line)) is ticket:
                del self._line[ticket]
                self._holder, self._started = ticket, False
                return 0
            return list(self._line).index(ticket) + 1

    def begin(self, ticket: object) -> bool:
        """True once for the holder: the one event that streams its run (later polls must not start it again)."""
        with self._lock:
            if ticket is not self._holder or self._started:
                return False
            self._started = True
            return True

    def holds(self, ticket: object) -> bool:
        with self._lock:
            return ticket is self._holder

    def leave(self, ticket: object) -> None:
        """Give up the slot or a place in the line."""
        with self._lock:
            if ticket is self._holder:
                self._holder = None
            self._line.pop(ticket, None)

    def waiting(self) -> int:
        """Runs in the line, the running one included."""
        with self._lock:
            return (self._holder is not None) + len(self._line)

    def _drop_stale(self) -> None:
        oldest = self.clock() - self.stale_seconds
        for ticket in [t for t, seen in self._line.items() if seen < oldest]:
            del self._line[ticket]


class TrainingRun:
    """``pixelar.train`` in a background thread with one compute thread. Its events, and a few samples at each
    held-out check, go into a queue that the UI drains; ``stop`` ends it within a step with everything trained so
    far kept, and so does reaching ``max_seconds`` (then ``capped`` is set)."""

    def __init__(self, model: PixelModel, dataset: pixelar.Dataset, config: pixelar.TrainConfig, stop: threading.Event,
                 max_seconds: float | None = None, yield_to: threading.Event | None = None):
        self.model, self.dataset, self.config, self.stop = model, dataset, config, stop
        self.yield_to = yield_to  # while cleared (the app's batcher computing), each step waits for it
        self.updates: queue.Queue = queue.Queue()
        self.start_held_out: float | None = None  # the untrained model's held-out loss: the plot's first point
        self.result: pixelar.TrainResult | None = None
        self.error: Exception | None = None
        self.max_seconds, self.capped = max_seconds, False
        self.thread = threading.Thread(target=self._run, name="pixelar-training", daemon=True)

    def _run(self) -> None:
        torch.set_num_threads(TRAINING_THREADS)
        try:
            self.start_held_out = pixelar.evaluate(self.model, self.dataset.held_out.subset(self.config.eval_images))
            self._draw(0)
            self.result = pixelar.train(self.model, self.dataset, self.config, on_event=self._on_event, stop=self.stop,
                                        yield_to=self.yield_to)
        except Exception as error:  # reported to the user by the UI thread
            self.error = error
        finally:
            self.updates.put(None)

    def _on_event(self, event: pixelar.TrainEvent) -> None:
        self.updates.put(event)
        if self.max_seconds is not None and event.elapsed_seconds >= self.max_seconds and not self.stop.is_set():
            self.capped = True  # the cap counts training time; the step in progress finishes and is kept
            self.stop.set()
        if event.held_out_nll is not None:
            self._draw(event.step)

    def _draw(self, step: int) -> None:
        """Queue a few samples from the model as it is at ``step`` (same seed each time, so they are comparable).
        They are drawn here, on the training run's own core, not through the request batcher."""
        was_training = self.model.training
        trace = pixelar.sample(self.model, SAMPLES_AT_CHECK, temperature=1.0, seed=0)
        self.model.train(was_training)  # sampling switched it to eval mode; training goes on with dropout
        self.updates.put((step, trace))

    def start(self) -> None:
        self.thread.start()

    def drain(self, timeout: float) -> tuple[list, list, bool]:
        """Everything that arrived within ``timeout`` s: (events, (step, trace) pairs, whether the run is over)."""
        events, samples, over = [], [], False
        try:
            item = self.updates.get(timeout=timeout)
            while True:
                if item is None:
                    over = True
                elif isinstance(item, tuple):
                    samples.append(item)
                else:
                    events.append(item)
                item = self.updates.get_nowait()
        except queue.Empty:
            pass
        return events, samples, over
