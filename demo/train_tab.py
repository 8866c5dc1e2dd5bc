"""The Train tab: train a model in a background thread, watch its loss live, stop it any time, download it.

One run at a time on the server (the ``training`` concurrency group); other users wait in the queue and are
told so. A finished or stopped run becomes a model of this session, in the Generate and Step-through pickers.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

import gradio as gr

import pixelar
from pixelar import render
from pixelar.checkpoints import run_metadata

from . import pictures
from .common import BuiltTab, check_choice, check_learning_rate, check_whole, friendly
from .data import DATASET_CHOICES, DATASET_NAMES, DataSets
from .links import TabLink, as_number
from .models import Workspace, model_order
from .serving import Batcher
from .tour import guided_tour
from .training import (
    CHECK_IMAGES,
    CONTEXTS,
    K_RANGE,
    LONG_RUN_SECONDS,
    POLL_SECONDS,
    Plan,
    Shape,
    Throughput,
    TrainingRun,
    TrainingSlot,
    budget_choices,
    run_seconds,
    budgets,
    format_seconds,
    samples_word,
    unit,
)

UPDATE_SECONDS = 1.0  # the page hears from a run at least this often
RECHECK_SECONDS = 5.0  # how often a page waiting for expected times asks whether the server still trains
MAX_STEPS, MAX_BATCH = 10**6, 8192
REPRESENTATIVE_SECONDS = 30  # shorter runs do not replace the measured speed behind the presets' estimates
INTRO = (
    "Train a model here and watch it learn. Loss is in **bits per pixel**: a blind guess is log₂ K bits (4.0 at "
    "K 16, the dashed line); lower is better. Stop any time: nothing trained so far is lost. The model then "
    "appears in the Generate and Step-through pickers (for you only) and can be downloaded. **Context** and **K** "
    "change the model's shape: more context costs parameters and time; fewer bins make coarser grey levels (bits "
    "per pixel then mean less)."
)
SKIP = object()  # "leave this output as it is" in ``train_run``'s updates


# ---- pure functions ----


def waiting_line(ahead: int, slot: TrainingSlot) -> str:
    """Where a run waiting for the server's training slot stands."""
    runs = f"{ahead} run{'s' * (ahead != 1)} ahead of yours"
    cap = f", each at most {slot.max_minutes:g} minutes" if slot.max_minutes else ""
    return f"**Waiting for another user's training to finish**: {runs}{cap}. Yours starts right after; Stop leaves the line."


def status_line(kind: str, dataset: pixelar.Dataset, event: pixelar.TrainEvent) -> str:
    """Device, step, samples/s, loss and ETA of a run in progress."""
    parts = [
        f"**Training {kind.upper()}** on {dataset.name} ({len(dataset.train):,} images)",
        f"device **{event.device}**",
        f"step **{event.step:,}** / {event.total_steps:,}",
        f"**{event.samples_per_second:,.0f}** {samples_word(kind)}/s",
    ]
    if event.loss is not None:
        parts.append(f"loss {event.loss:.3f} bits/pixel")
    parts.append(f"ETA **{format_seconds(event.eta_seconds)}**")
    return " · ".join(parts)


def batch_label(kind: str) -> str:
    return "Batch size (whole images per step)" if unit(kind) == "images" else "Batch size ((image, pixel) pairs per step)"


def batch_info(kind: str) -> str:
    """The batch sizes the model's default shape may train on here: memory per sample bounds them."""
    return f"1 to {min(MAX_BATCH, Shape.default(kind).max_batch_size(kind)):,}"


@functools.lru_cache(maxsize=64)
def parameters(kind: str, shape: Shape) -> int:
    return pixelar.count_parameters(shape.build(kind))


def shape_line(kind: str, shape: Shape) -> str:
    """The cost of a model shape in parameters, beside the seed's shape of the same model."""
    line = f"**{kind.upper()} · {shape.describe(kind)}: {parameters(kind, shape):,} parameters**"
    standard = Shape.default(kind)
    if shape != standard:
        line += f" ({standard.describe(kind)}: {parameters(kind, standard):,})"
    return line


def run_line(kind: str, steps: int, batch_size: int, rate: float, check_seconds: float = 0.0) -> str:
    """This run's expected time at ``rate`` samples/s, and ``check_seconds`` per held-out check, measured here."""
    what = "images" if unit(kind) == "images" else "(image, pixel) pairs"
    seconds = run_seconds(steps, batch_size, rate, check_seconds)
    return (f"This run: {steps:,} steps × {batch_size:,} {what} ≈ **{format_seconds(seconds)}** "
            f"at the **{rate:,.0f} {samples_word(kind)}/s** measured here for this shape, with its held-out checks.")


def samples_picture(step: int, trace: pixelar.Trace, names: list[str], conditional: bool) -> gr.Image:
    captions = [names[label] for label in trace.labels] if conditional else None
    picture = render.sample_grid(trace.images(), columns=5, scale=6, captions=captions)
    return gr.Image(picture, label=f"Samples at step {step:,} (temperature 1, seed 0: the same dice every time)")


# ---- the events: what every session shares, passed explicitly ----


def on_kind(kind):
    """A new model kind starts from its own presets (V4 counts whole images) and learning rate."""
    quick = budgets(check_choice(kind, "Model", model_order()))["quick"]
    return (gr.Radio(budget_choices(kind, None), value="quick"), quick.steps,
            gr.Number(quick.batch_size, label=batch_label(kind), info=batch_info(kind)), pixelar.MODELS[kind].learning_rate,
            gr.Radio(visible=not pixelar.MODELS[kind].sees_whole_past))


def on_budget(kind, key):
    presets = budgets(check_choice(kind, "Model", model_order()))
    preset = presets[check_choice(key, "Budget", list(presets))]
    return preset.steps, preset.batch_size


def open_link(view: TrainView, values: dict[str, str], workspace: Workspace | None) -> dict:
    """The Train tab set up as a link says (``demo.links``): model, context, K, data set and budget, each checked."""
    kind = check_choice(values.get("model", "v3"), "The link's model", model_order())
    shape = Shape.check(kind, as_number(values.get("context", "28")), as_number(values.get("k", "16")))
    if not pixelar.MODELS[kind].sees_whole_past and shape.context not in CONTEXTS:
        raise ValueError(f"The link's context must be one of {', '.join(map(str, CONTEXTS))}, got {shape.context}")
    dataset = check_choice(values.get("data", "mnist-5k"), "The link's data set", DATASET_NAMES)
    preset = values.get("preset", "quick")
    steps, batch_size = on_budget(kind, preset)
    return {view.kind: kind, view.context: gr.Radio(value=shape.context, visible=not pixelar.MODELS[kind].sees_whole_past),
            view.k_bins: shape.k, view.dataset: dataset, view.budget: gr.Radio(budget_choices(kind, None), value=preset),
            view.steps: steps, view.batch_size: gr.Number(batch_size, label=batch_label(kind), info=batch_info(kind)),
            view.learning_rate: pixelar.MODELS[kind].learning_rate}


def run_update(status=SKIP, plot=SKIP, samples=SKIP, download=SKIP, stop=SKIP, timer=SKIP) -> tuple:
    """One update of ``Trainer.train_run``'s outputs; ``SKIP`` leaves a component as it is."""
    return tuple(gr.skip() if value is SKIP else value for value in (status, plot, samples, download, stop, timer))


@dataclass
class Trainer:
    """What the Train tab's events share across sessions: the data sets, the server's one training slot (first come,
    first served, each run capped at ``slot.max_minutes``), the batcher a run gives way to, the measured training
    speed, and whether a run trains now (its speed is then not measured fairly)."""

    data_sets: DataSets
    slot: TrainingSlot
    batcher: Batcher
    throughput: Throughput | None = None
    busy: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self.throughput = self.throughput or Throughput(self.data_sets)

    def on_open(self, kind, steps, batch_size, context, k, dataset):
        data = self.describe_data(dataset)
        for update in self.describe_budget(kind, steps, batch_size, context, k):
            yield (*update, data)

    def describe_budget(self, kind, steps, batch_size, context, k):
        """The shape's parameters, the presets' and this run's expected times from the samples/s measured for this
        shape, and the long-run box. A shape not measured yet takes a few seconds, said first; while the server
        trains, the last update starts the recheck timer, which asks again until the times can be measured."""
        throughput, busy, slot = self.throughput, self.busy, self.slot
        done = gr.Timer(active=False)
        try:
            shape = Shape.check(kind, context, k)
        except ValueError as error:
            yield gr.skip(), str(error), gr.skip(), done
            return
        line = shape_line(kind, shape)
        if (kind, shape) not in throughput.rates and not busy.is_set():
            measuring = f"{line}. Measuring its training speed on this server (a few seconds)…"
            yield gr.skip(), measuring, gr.skip(), gr.skip()
        rate = throughput.rate(kind, shape, busy.is_set())
        if rate is None:
            yield (gr.Radio(budget_choices(kind, None)), f"{line}. Expected times appear when the server is not training.",
                   gr.Checkbox(visible=False), gr.Timer(active=True))
            return
        if any(v is None or v == "" for v in (steps, batch_size)):
            yield gr.skip(), f"{line}. Enter steps and a batch size to see the expected time.", gr.skip(), done
            return
        try:
            steps, batch_size = check_whole(steps, "Steps", 1, MAX_STEPS), check_whole(batch_size, "Batch size", 1, MAX_BATCH)
        except ValueError as error:
            yield gr.skip(), f"{line}. {error}", gr.skip(), done
            return
        check_seconds = throughput.check_seconds.get((kind, shape), 0.0)
        text = f"{line}. {run_line(kind, steps, batch_size, rate, check_seconds)}"
        expected = run_seconds(steps, batch_size, rate, check_seconds)
        if slot.max_minutes and expected > slot.max_minutes * 60:
            text += f" This server stops a run after **{slot.max_minutes:g} minutes**, keeping what it trained."
        long_run = gr.Checkbox(visible=expected > LONG_RUN_SECONDS, value=False)
        yield gr.Radio(budget_choices(kind, rate, check_seconds)), text, long_run, done

    def describe_data(self, name):
        loaded, notice = self.data_sets.load(name)
        return f"Note: {notice}\n\nUsing {loaded.describe()}." if notice else f"Using {loaded.describe()}."

    def on_start(self, kind, dataset, steps, batch_size, learning_rate, context, k, confirmed,
                 workspace: Workspace | None):
        """Check the inputs and take the free slot or a place in line; returns at once (a waiting run holds no worker)."""
        slot = self.slot
        steps, batch_size = check_whole(steps, "Steps", 1, MAX_STEPS), check_whole(batch_size, "Batch size", 1, MAX_BATCH)
        shape = Shape.check(kind, context, k)
        plan = Plan.check(kind, dataset, steps, batch_size, check_learning_rate(learning_rate), shape)
        if self.throughput.expected_seconds(plan) > LONG_RUN_SECONDS and not confirmed:
            raise gr.Error("This run would take over 30 minutes: tick the confirmation box under the budget.", print_exception=False)
        workspace = workspace or Workspace()
        if workspace.stop is not None and not workspace.stop.is_set():
            raise gr.Error("Your training run is still going (or waiting): stop it first.", print_exception=False)
        ticket = threading.Event()  # the run's stop switch, and its place in the slot's line
        place = slot.join(ticket)
        workspace.stop = ticket
        status = waiting_line(place, slot) if place else "Starting…"
        return plan, workspace, status, gr.DownloadButton(interactive=False), gr.Button(interactive=True), gr.Timer(active=place > 0)

    def train_run(self, plan: Plan | None, workspace: Workspace | None):
        """Run ``plan`` if this session's ticket holds the slot, streaming its progress; otherwise say where it
        stands in line and return at once (the page asks again at the next tick)."""
        slot, busy, update = self.slot, self.busy, run_update
        ticket = workspace.stop if workspace is not None else None
        if plan is None or ticket is None:
            return
        if ticket.is_set():
            yield update(timer=gr.Timer(active=False))
            return
        place = slot.poll(ticket)
        if place is None:  # its page did not ask for a while: dropped from the line
            ticket.set()
            yield update("Your place in the training line lapsed: press Start again.", stop=gr.Button(interactive=False),
                         timer=gr.Timer(active=False))
            return
        if place > 0:
            yield update(waiting_line(place, slot), timer=gr.Timer(active=True))
            return
        if not slot.begin(ticket):  # its run is already streaming, from an earlier event
            return
        run = None
        busy.set()
        try:
            yield update("Loading the data set…", timer=gr.Timer(active=False))
            data, notice = self.data_sets.load(plan.dataset)
            if notice:
                gr.Warning(notice)
            cap = slot.max_minutes * 60 if slot.max_minutes else None
            run = TrainingRun(plan.shape.build(plan.kind), data, plan.config, ticket, max_seconds=cap,
                              yield_to=self.batcher.idle)
            run.start()
            history, over = [], False
            while not over:
                events, drawn, over = run.drain(UPDATE_SECONDS)
                history += events
                picture = samples_picture(*drawn[-1], list(data.class_names), run.model.conditional) if drawn else SKIP
                line = status_line(plan.kind, data, history[-1]) if history else "Measuring the untrained model…"
                # drawing the plot is the costliest update: skip it while others' samples are being computed
                redraw = over or (bool(events) and self.batcher.idle.is_set())
                curves = pictures.loss_curves(history, run.start_held_out)
                figure = pictures.loss_figure(curves, plan.config.steps, plan.shape.k) if history and redraw else SKIP
                yield update(line, figure, picture)
            if run.error is not None:
                raise run.error
            text, path = self.finish(plan, data, run, workspace)
            if notice:
                text += f"\n\nNote: {notice}"
            yield update(text, download=gr.DownloadButton(value=str(path), interactive=True) if path else SKIP,
                         stop=gr.Button(interactive=False))
        finally:
            ticket.set()  # marks the session idle; ends the thread if the page was closed mid-run
            if run is not None:
                run.thread.join()
            busy.clear()
            slot.leave(ticket)

    def finish(self, plan: Plan, data: pixelar.Dataset, run: TrainingRun, workspace: Workspace):
        """Keep the trained model in the session and save it as a checkpoint: (what happened, its path)."""
        result, model = run.result, run.model
        if result.steps == 0:
            return "Stopped before the first step: nothing to keep.", None
        if result.seconds >= REPRESENTATIVE_SECONDS:
            self.throughput.record(plan, result)
        name = workspace.add(model)
        metadata = run_metadata(model, result, plan.config, data, result.held_out_nll, CHECK_IMAGES)
        path = pixelar.save_checkpoint(model, workspace.folder / f"{name}.safetensors", **metadata)
        how = f"Stopped at this server's cap of {self.slot.max_minutes:g} minutes" if run.capped else (
            "Stopped" if result.stopped else "Done")
        text = (
            f"**{how}** after {result.steps:,} steps ({result.samples_seen:,} "
            f"{samples_word(plan.kind)} in {format_seconds(result.seconds)} on {result.device}). Held-out loss "
            f"**{result.held_out_nll:.3f} bits/pixel**. **{name}** is ready in Generate and Step through."
        )
        return text, path

    def on_stop(self, workspace: Workspace | None):
        """Stop the run after its current step, or leave the line."""
        slot = self.slot
        if workspace is None or workspace.stop is None or workspace.stop.is_set():
            return gr.skip(), gr.skip(), gr.skip()
        workspace.stop.set()
        if slot.holds(workspace.stop):
            return "Stopping after this step; everything trained so far is kept…", gr.skip(), gr.skip()
        slot.leave(workspace.stop)
        return "Left the training line; nothing was trained.", gr.Button(interactive=False), gr.Timer(active=False)


# ---- layout and wiring ----


@dataclass
class TrainView:
    """The Train tab's components."""

    tab: gr.Tab
    kind: gr.Radio
    context: gr.Radio
    k_bins: gr.Number
    dataset: gr.Dropdown
    budget: gr.Radio
    budget_info: gr.Markdown
    confirm: gr.Checkbox
    data_info: gr.Markdown
    steps: gr.Number
    batch_size: gr.Number
    learning_rate: gr.Number
    start: gr.Button
    stop: gr.Button
    status: gr.Markdown
    plot: gr.Plot
    samples: gr.Image
    download: gr.DownloadButton
    plan: gr.State
    turn: gr.Timer
    recheck: gr.Timer


def train_layout() -> TrainView:
    """The Train tab's components, laid out in the current Blocks."""
    with gr.Tab("Train", id="train", elem_id="tab-train") as tab:
        with gr.Row(elem_classes="tab-body"):
            with gr.Column(scale=1, min_width=340, elem_classes="controls"):
                kind = gr.Radio([(k.upper(), k) for k in model_order()], value="v3", label="Model", elem_id="train-model")
                context = gr.Radio(list(CONTEXTS), value=28, label="Context length: previous pixels seen (the seed's: 28)",
                                   elem_id="train-context")
                with gr.Row():
                    k_bins = gr.Number(16, label=f"K bins ({K_RANGE[0]}–{K_RANGE[1]})", elem_id="train-k",
                                       scale=1, min_width=100)
                    dataset = gr.Dropdown(DATASET_CHOICES, value="mnist-5k", label="Data set", scale=2)
                budget = gr.Radio(budget_choices("v3", None), value="quick", label="Budget (times measured on this server)")
                budget_info = gr.Markdown(elem_id="train-cost")
                confirm = gr.Checkbox(False, label="Yes, I want to start a run this long", visible=False)
                data_info = gr.Markdown(elem_classes="small-note")
                gr.Markdown(INTRO, elem_classes="small-note")
                guided_tour("train")
            with gr.Column(scale=2, min_width=320):
                with gr.Row(equal_height=True):
                    start = gr.Button("Start training", variant="primary", size="lg", elem_id="train-start", scale=2)
                    stop = gr.Button("Stop", variant="stop", size="lg", interactive=False, elem_id="train-stop", scale=1)
                status = gr.Markdown("Not training.", elem_id="train-status")
                with gr.Row():
                    plot = gr.Plot(label="Loss, bits per pixel (log scale): training line, held-out dots",
                                   elem_id="train-plot", elem_classes="picture", min_width=320, scale=3)
                    samples = gr.Image(label="Samples at each held-out check", type="pil", format="png",
                                       interactive=False, elem_classes="pixelated picture", elem_id="train-samples",
                                       min_width=200, scale=2)
                download = gr.DownloadButton("Download the trained model (.safetensors)", value=None, interactive=False)
                quick = budgets("v3")["quick"]
                with gr.Accordion("Steps, batch size, learning rate", open=False):  # here: the controls fit 720 px
                    with gr.Row():
                        steps = gr.Number(quick.steps, label="Steps", info=f"1 to {MAX_STEPS:,}")
                        batch_size = gr.Number(quick.batch_size, label=batch_label("v3"), info=batch_info("v3"))
                        learning_rate = gr.Number(pixelar.MODELS["v3"].learning_rate, label="Learning rate (AdamW)",
                                                  step=1e-4, info="above 0, at most 1")
        plan = gr.State(None)
        turn = gr.Timer(POLL_SECONDS, active=False)  # ticks while this session's run waits in line
        recheck = gr.Timer(RECHECK_SECONDS, active=False)  # ticks while expected times wait for the server's run to end
    return TrainView(tab, kind, context, k_bins, dataset, budget, budget_info, confirm, data_info, steps, batch_size,
                     learning_rate, start, stop, status, plot, samples, download, plan, turn, recheck)


def wire(v: TrainView, trainer: Trainer, session: gr.State) -> None:
    """The Train tab's events, each a ``Trainer`` method (or a pure function) behind ``friendly``."""
    private = {"api_visibility": "private"}
    estimate = [v.budget, v.budget_info, v.confirm, v.recheck]
    shape_inputs = [v.kind, v.steps, v.batch_size, v.context, v.k_bins]
    v.tab.select(friendly(trainer.on_open), [*shape_inputs, v.dataset], [*estimate, v.data_info], **private)
    v.kind.input(friendly(on_kind), [v.kind], [v.budget, v.steps, v.batch_size, v.learning_rate, v.context],
                 queue=False, **private)
    v.budget.input(friendly(on_budget), [v.kind, v.budget], [v.steps, v.batch_size], queue=False, **private)
    gr.on([v.kind.change, v.steps.change, v.batch_size.change, v.context.change, v.k_bins.change, v.recheck.tick],
          friendly(trainer.describe_budget), shape_inputs, estimate, trigger_mode="always_last",
          concurrency_id="measure", **private)
    v.dataset.change(friendly(trainer.describe_data), [v.dataset], [v.data_info], concurrency_id="data", **private)
    run_outputs = [v.status, v.plot, v.samples, v.download, v.stop, v.turn]
    run_options = dict(
        concurrency_limit=None,  # the training slot, not the queue, lets one run in at a time and says who is next
        show_progress="minimal", show_progress_on=[v.plot, v.samples],  # the status line stays readable while waiting
        **private,
    )
    train_run = friendly(trainer.train_run)
    v.start.click(
        friendly(trainer.on_start),
        [v.kind, v.dataset, v.steps, v.batch_size, v.learning_rate, v.context, v.k_bins, v.confirm, session],
        [v.plan, session, v.status, v.download, v.stop, v.turn], concurrency_limit=None, show_progress_on=[v.status],
        **private,
    ).success(train_run, [v.plan, session], run_outputs, **run_options)
    v.turn.tick(train_run, [v.plan, session], run_outputs, **run_options)  # a waiting run asks for its turn
    v.stop.click(trainer.on_stop, [session], [v.status, v.stop, v.turn], queue=False, **private)


def build_train_tab(data_sets: DataSets, session: gr.State, slot: TrainingSlot | None = None,
                    batcher: Batcher | None = None) -> BuiltTab:
    """The Train tab and its events. The server's measured training speed, its one training slot and the request
    ``batcher`` a run gives way to (the app's, from ``app.build_app``) are shared by every session."""
    view = train_layout()
    wire(view, Trainer(data_sets, slot or TrainingSlot(), batcher or Batcher()), session)
    v = view
    keys = {"model": v.kind, "context": v.context, "k": v.k_bins, "data": v.dataset, "preset": v.budget}
    outputs = [*keys.values(), v.steps, v.batch_size, v.learning_rate]
    return BuiltTab(view.tab, link=TabLink("train", keys, functools.partial(open_link, view), outputs))
