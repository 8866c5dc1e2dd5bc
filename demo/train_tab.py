"""The Train tab: train a model in a background thread, watch its loss live, stop it any time, download it.

One run at a time on the server (the ``training`` concurrency group); other users wait in the queue and are
told so. A finished or stopped run becomes a model of this session, in the Generate and Step-through pickers.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import gradio as gr
import pandas as pd

import pixelar
from pixelar import render, stepview
from pixelar.models import PixelMLP

from .common import BuiltTab, friendly
from .data import DATASET_CHOICES, DataSets
from .models import MODEL_ORDER, Shelf, Workspace, model_title

SEED_RECIPE_SAMPLES = 5_000_000 * 20  # the seed trains on 5M (image, pixel) pairs for 20 epochs
LONG_RUN_SECONDS = 30 * 60  # longer runs need a tick in the confirmation box
ASSUMED_RATE = 13_000  # samples/s for that check until this server has measured its own (2 CPU cores: ~10-13k)
UPDATE_SECONDS = 1.0  # the UI hears from a run at least this often
CHECK_IMAGES = 20  # held-out images per check during a run (and for the final figure)
SAMPLES_AT_CHECK = 10  # images drawn at each held-out check (one of each class for V3)


@dataclass(frozen=True)
class Budget:
    name: str
    steps: int
    batch_size: int = 512


BUDGETS = {
    "quick": Budget("Quick", 1_000),  # about a minute on 2 CPU cores
    "standard": Budget("Standard", 15_000),  # about 10 minutes
    "seed": Budget("The seed's recipe (5M pairs × 20 epochs)", -(-SEED_RECIPE_SAMPLES // 512)),
}


def budget_choices(rate: float | None) -> list[tuple[str, str]]:
    """The budget picker's labels, with each preset's expected time at ``rate`` samples/s when it is known."""
    choices = []
    for key, b in BUDGETS.items():
        label = f"{b.name} · {b.steps * b.batch_size / 1e6:.3g}M samples"
        if rate:
            label += f" · ≈ {format_seconds(b.steps * b.batch_size / rate)}"
        choices.append((label, key))
    return choices


@dataclass(frozen=True)
class Plan:
    """A checked request for a run, handed from Start to the queued training event."""

    kind: str
    dataset: str
    config: pixelar.TrainConfig


def format_seconds(seconds: float | None) -> str:
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
    """Training samples per second on this server, per model kind: measured by a short run on first use, then
    updated by every real run."""

    def __init__(self, data_sets: DataSets):
        self.data_sets = data_sets
        self.rates: dict[str, float] = {}
        self._lock = threading.Lock()

    def rate(self, kind: str, server_busy: bool) -> float | None:
        """Samples/s for ``kind``; None if unknown and the server is too busy training to measure fairly."""
        with self._lock:
            if kind not in self.rates and not server_busy:
                dataset, _ = self.data_sets.load("mnist-5k")
                config = pixelar.TrainConfig(steps=30, eval_every=0, eval_images=1, report_seconds=3600)
                result = pixelar.train(pixelar.build_model(kind), dataset, config)
                self.rates[kind] = result.samples_seen / result.seconds
            return self.rates.get(kind)

    def record(self, kind: str, batch_size: int, rate: float) -> None:
        """Keep a real run's rate (only at the presets' batch size: the rate depends on it)."""
        if batch_size == BUDGETS["quick"].batch_size and rate > 0:
            self.rates[kind] = rate


class TrainingRun:
    """``pixelar.train`` in a background thread. Its events, and a few samples at each held-out check, go into
    a queue that the UI drains; ``stop`` ends it within a step with everything trained so far kept."""

    def __init__(self, model: PixelMLP, dataset: pixelar.Dataset, config: pixelar.TrainConfig, stop: threading.Event):
        self.model, self.dataset, self.config, self.stop = model, dataset, config, stop
        self.updates: queue.Queue = queue.Queue()
        self.start_held_out: float | None = None  # the untrained model's held-out loss: the plot's first point
        self.result: pixelar.TrainResult | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, name="pixelar-training", daemon=True)

    def _run(self) -> None:
        try:
            self.start_held_out = pixelar.evaluate(self.model, self.dataset.held_out.subset(self.config.eval_images))
            self._draw(0)
            self.result = pixelar.train(self.model, self.dataset, self.config, on_event=self._on_event, stop=self.stop)
        except Exception as error:  # reported to the user by the UI thread
            self.error = error
        finally:
            self.updates.put(None)

    def _on_event(self, event: pixelar.TrainEvent) -> None:
        self.updates.put(event)
        if event.held_out_nll is not None:
            self._draw(event.step)

    def _draw(self, step: int) -> None:
        """Queue a few samples from the model as it is at ``step`` (same seed each time, so they are comparable)."""
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


def status_line(kind: str, dataset: pixelar.Dataset, event: pixelar.TrainEvent) -> str:
    parts = [
        f"**Training {kind.upper()}** on {dataset.name} ({len(dataset.train):,} images)",
        f"device **{event.device}**",
        f"step **{event.step:,}** / {event.total_steps:,}",
        f"**{event.samples_per_second:,.0f}** samples/s",
    ]
    if event.loss is not None:
        parts.append(f"loss {event.loss:.3f} bits/pixel")
    parts.append(f"ETA **{format_seconds(event.eta_seconds)}**")
    return " · ".join(parts)


def samples_picture(step: int, trace: pixelar.Trace, names: list[str], conditional: bool) -> tuple:
    captions = [names[label] for label in trace.labels] if conditional else None
    picture = render.sample_grid(trace.images(), columns=5, scale=6, captions=captions)
    return gr.Image(picture, label=f"Samples at step {step:,} (temperature 1, seed 0: the same dice every time)")


def build_train_tab(shelf: Shelf, data_sets: DataSets, session: gr.State) -> BuiltTab:
    """The Train tab and its events."""
    with gr.Tab("Train") as tab:
        throughput = Throughput(data_sets)
        busy = threading.Event()  # set while a run trains; others are told why they wait

        gr.Markdown(
            "Train a model here and watch it learn. Loss is in **bits per pixel**: 4.0 is a uniform guess over 16 "
            "bins; lower is better. Stop any time: nothing trained so far is lost. The model then appears in the "
            "Generate and Step-through pickers (for you only) and can be downloaded."
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=340):
                kind = gr.Radio([(model_title(k), k) for k in MODEL_ORDER], value="v3", label="Model")
                dataset = gr.Dropdown(DATASET_CHOICES, value="mnist-5k", label="Data set")
                data_info = gr.Markdown()
                budget = gr.Radio(budget_choices(None), value="quick", label="Budget",
                                  info="Times are measured on this server (more with held-out checks).")
                budget_info = gr.Markdown()
                with gr.Accordion("Steps, batch size, learning rate", open=False):
                    steps = gr.Number(BUDGETS["quick"].steps, label="Steps", precision=0, minimum=1, maximum=1_000_000)
                    batch_size = gr.Number(512, label="Batch size ((image, pixel) pairs per step)", precision=0, minimum=1, maximum=8192)
                    learning_rate = gr.Number(1e-3, label="Learning rate (AdamW)", minimum=1e-6, maximum=1.0, step=1e-4)
                confirm = gr.Checkbox(False, label="Yes, I want to start a run this long", visible=False)
                with gr.Row():
                    start = gr.Button("Start training", variant="primary", size="lg")
                    stop = gr.Button("Stop", variant="stop", size="lg")
            with gr.Column(scale=2):
                status = gr.Markdown("Not training.", elem_id="train-status")
                plot = gr.LinePlot(
                    None, x="step", y="bits per pixel", color="curve",
                    title="Loss (bits per pixel)", height=360, elem_id="train-plot", color_map={"training": "#4c78a8", "held-out": "#f58518"},
                )
                samples = gr.Image(label="Samples at each held-out check", type="pil", format="png", interactive=False,
                                   elem_classes="pixelated", height=300, elem_id="train-samples")
                download = gr.DownloadButton("Download the trained model (.safetensors)", value=None, interactive=False)
        plan = gr.State(None)

        def describe_budget(kind_value, n_steps, batch):
            """The presets' and this run's expected times, from the measured samples/s (and the long-run box)."""
            rate = throughput.rate(kind_value, busy.is_set())
            if rate is None:
                return gr.Radio(budget_choices(None)), "Expected times appear when the server is not busy training.", gr.Checkbox(visible=False)
            expected = (n_steps or 0) * (batch or 0) / rate
            text = (
                f"This run: {int(n_steps or 0):,} steps × {int(batch or 0)} samples ≈ **{format_seconds(expected)}** "
                f"at the **{rate:,.0f} samples/s** measured here for {kind_value.upper()}."
            )
            return gr.Radio(budget_choices(rate)), text, gr.Checkbox(visible=expected > LONG_RUN_SECONDS, value=False)

        def on_budget(key):
            return BUDGETS[key].steps, BUDGETS[key].batch_size

        budget.input(on_budget, inputs=[budget], outputs=[steps, batch_size], api_visibility="private", queue=False)
        gr.on([kind.change, steps.change, batch_size.change], friendly(describe_budget), inputs=[kind, steps, batch_size],
              outputs=[budget, budget_info, confirm], api_visibility="private", trigger_mode="always_last")

        @friendly
        def on_dataset(name):
            loaded, notice = data_sets.load(name)
            return f"Note: {notice}\n\nUsing {loaded.describe()}." if notice else f"Using {loaded.describe()}."

        dataset.change(on_dataset, inputs=[dataset], outputs=[data_info], api_visibility="private", concurrency_id="data")

        @friendly
        def on_start(kind_value, dataset_value, n_steps, batch, lr, confirmed, workspace: Workspace | None):
            if kind_value not in pixelar.MODELS:
                raise ValueError(f"unknown model {kind_value!r}")
            if not isinstance(n_steps, int) or not isinstance(batch, int):
                raise ValueError("steps and batch size must be whole numbers")
            config = pixelar.TrainConfig(
                steps=n_steps, batch_size=batch, learning_rate=lr, eval_every=min(1000, max(50, n_steps // 8)),
                eval_images=CHECK_IMAGES,
            )
            config.validate()
            rate = throughput.rates.get(kind_value, ASSUMED_RATE)
            if n_steps * batch / rate > LONG_RUN_SECONDS and not confirmed:
                raise gr.Error("This run would take over 30 minutes: tick the box above Start to confirm.", print_exception=False)
            workspace = workspace or Workspace()
            if workspace.stop is not None and not workspace.stop.is_set():
                raise gr.Error("Your training run is still going (or waiting): stop it first.", print_exception=False)
            workspace.stop = threading.Event()
            waiting = "**Waiting for another user's training to finish**; yours starts right after." if busy.is_set() else "Starting…"
            return Plan(kind_value, dataset_value, config), workspace, waiting, gr.DownloadButton(interactive=False)

        @friendly
        def run_training(request: Plan | None, workspace: Workspace):
            if request is None:
                return
            if workspace.stop.is_set():
                yield "Stopped before it started.", gr.skip(), gr.skip(), gr.skip()
                return
            run = None
            busy.set()  # the "training" concurrency group lets one run in at a time; this only tells the others
            try:
                yield "Loading the data set…", gr.skip(), gr.skip(), gr.skip()
                data, notice = data_sets.load(request.dataset)
                if notice:
                    gr.Warning(notice)
                model = pixelar.build_model(request.kind)
                run = TrainingRun(model, data, request.config, workspace.stop)
                run.start()
                history, over, names = [], False, list(data.class_names)
                while not over:
                    events, drawn, over = run.drain(UPDATE_SECONDS)
                    history += events
                    picture = samples_picture(*drawn[-1], names, model.conditional) if drawn else gr.skip()
                    line = status_line(request.kind, data, history[-1]) if history else "Measuring the untrained model…"
                    # the plot fixes its colours at the first data it gets: send both curves from the start
                    curves = pd.DataFrame(stepview.loss_curves(history, run.start_held_out)) if history else gr.skip()
                    yield line, curves, picture, gr.skip()
                if run.error is not None:
                    raise run.error
                text, path = finish(request, data, model, run.result, workspace)
                if notice:
                    text += f"\n\nNote: {notice}"
                yield text, gr.skip(), gr.skip(), gr.DownloadButton(value=str(path), interactive=True) if path else gr.skip()
            finally:
                workspace.stop.set()  # marks the session idle; ends the thread if the page was closed mid-run
                if run is not None:
                    run.thread.join()
                busy.clear()

        def finish(request: Plan, data: pixelar.Dataset, model: PixelMLP, result: pixelar.TrainResult, workspace: Workspace):
            """Keep the trained model in the session, save it as a checkpoint: (what happened, checkpoint path)."""
            if result.steps == 0:
                return "Stopped before the first step: nothing to keep.", None
            throughput.record(request.kind, request.config.batch_size, result.samples_seen / result.seconds)
            name = workspace.add(model)
            path = pixelar.save_checkpoint(
                model, workspace.folder / f"{name}.safetensors", dataset=data.name, class_names=list(data.class_names),
                steps=result.steps, samples_seen=result.samples_seen, train_seconds=round(result.seconds, 1),
                device=result.device, held_out_nll=round(result.held_out_nll, 4), held_out_images=CHECK_IMAGES,
                batch_size=request.config.batch_size, learning_rate=request.config.learning_rate or model.learning_rate,
                lr_schedule=request.config.lr_schedule, seed=request.config.seed, stopped_early=result.stopped,
            )
            how = "Stopped" if result.stopped else "Done"
            text = (
                f"**{how}** after {result.steps:,} steps ({result.samples_seen:,} samples in {format_seconds(result.seconds)} "
                f"on {result.device}). Held-out loss **{result.held_out_nll:.3f} bits/pixel**. **{name}** is ready in "
                "Generate and Step through."
            )
            return text, path

        start.click(
            on_start,
            inputs=[kind, dataset, steps, batch_size, learning_rate, confirm, session],
            outputs=[plan, session, status, download],
            api_visibility="private", concurrency_limit=None,
        ).success(
            run_training,
            inputs=[plan, session],
            outputs=[status, plot, samples, download],
            api_visibility="private", concurrency_limit=1, concurrency_id="training", show_progress="minimal",
            show_progress_on=[plot, samples],  # the status line stays readable while queued
        )

        def on_stop(workspace: Workspace | None):
            if workspace is None or workspace.stop is None or workspace.stop.is_set():
                return gr.skip()
            workspace.stop.set()
            return "Stopping after this step; everything trained so far is kept…"

        stop.click(on_stop, inputs=[session], outputs=[status], api_visibility="private", queue=False)

        @friendly
        def on_open(kind_value, n_steps, batch, dataset_value):
            return (*describe_budget(kind_value, n_steps, batch), on_dataset(dataset_value))

        tab.select(on_open, inputs=[kind, steps, batch_size, dataset], outputs=[budget, budget_info, confirm, data_info],
                   api_visibility="private")
    return BuiltTab(tab)
