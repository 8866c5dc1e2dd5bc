"""What the tabs share: input checks (each error names its field and the allowed range; nothing is clamped), the
error wrapper that keeps stack traces out of the browser, and the sampler controls (model, class, temperature,
top-k, top-p, seed) with their one validation path, ``SamplerControls.read``."""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import gradio as gr

import pixelar
from pixelar import sampling
from pixelar.inputs import number, shown, whole_number, within

from .models import Shelf, Workspace
from .text import as_html

if TYPE_CHECKING:
    from .links import TabLink

log = logging.getLogger(__name__)

# The app's limits: the core's (``pixelar.sampling``: TEMPERATURE_RANGE, MAX_SAMPLES), narrowed for a classroom
# server; ``within`` refuses, at import, any that would widen them. The checks below call the core's with these.
APP_TEMPERATURE_RANGE = within((0.1, 2.0), sampling.TEMPERATURE_RANGE, "the app's temperature")
APP_MAX_SAMPLES = 64  # per Generate click: about 4 s for V3 on a 2-core CPU
within((1, APP_MAX_SAMPLES), (1, sampling.MAX_SAMPLES), "the app's number of samples")
SEED_MAX = sampling.SEED_MAX
APP_TOP_K_MAX = 16  # the top-k boxes' largest shown value: the shipped models' K (each model's own K is what is checked)
ALL_CLASSES = -1  # the class picker's "one of each, in turn"
USER_ERRORS = (ValueError, pixelar.CheckpointError, pixelar.DataUnavailable)
# Events that sample: they wait in ``serving``'s batcher, which merges concurrent requests into shared runs on one
# worker thread, so many may wait at once (a class pressing Generate together becomes one run).
SAMPLING = {"concurrency_id": "sampling", "concurrency_limit": 64}
ERROR_SECONDS = 6  # a message stays this long (or until closed): long enough to read, short enough not to hide a view


@dataclass
class BuiltTab:
    """A tab as ``app.py`` needs it: the tab, and the model pickers to refresh whenever it opens."""

    tab: gr.Tab
    pickers: list[gr.Dropdown] = field(default_factory=list)
    link: TabLink | None = None  # what the tab keeps in the page's URL (``demo.links``)


def user_message(error: Exception) -> gr.Error:
    """A short message for the browser, shown as text (``as_html``); unexpected errors are logged here and named only."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, USER_ERRORS):
        return gr.Error(as_html(error), duration=ERROR_SECONDS, print_exception=False)
    log.exception("unexpected error in an event handler")
    text = f"Something went wrong ({type(error).__name__}). The app is still running; please try again."
    return gr.Error(text, duration=ERROR_SECONDS, print_exception=False)


def friendly(fn):
    """Wrap an event handler (function or generator) so that any error reaches the browser as a short message."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:
                raise user_message(error) from None

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            raise user_message(error) from None

    return function


def check_whole(value, field: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (an integral float is fine), or a ValueError that names the field
    and the range (the core's one check, ``pixelar.inputs.whole_number``, plus the empty box)."""
    if value is None or value == "":
        raise ValueError(f"{field} must be a whole number from {low} to {high}; the box is empty")
    return whole_number(value, field, low, high)


def check_temperature(temperature) -> float:
    """A temperature from ``APP_TEMPERATURE_RANGE`` (the core's check, narrowed), or a ValueError saying what is
    allowed."""
    low, high = APP_TEMPERATURE_RANGE
    if temperature is None or temperature == "":
        raise ValueError(f"Temperature must be a number from {low:g} to {high:g}; the box is empty")
    return sampling.check_temperature(temperature, "Temperature", APP_TEMPERATURE_RANGE)


def check_count(n, high: int = APP_MAX_SAMPLES, field: str = "Samples") -> int:
    """A number of samples from 1 to ``high`` (at most the core's ``MAX_SAMPLES``)."""
    if n is None or n == "":
        raise ValueError(f"{field} must be a whole number from 1 to {high}; the box is empty")
    return sampling.check_count(n, field, high)


def check_seed(seed) -> int | None:
    """A seed from 0 to 2**31 - 1 (the core's check), or None (an empty box; ``next_seed`` says what that means)."""
    if seed is None or seed == "":
        return None
    return sampling.check_seed(seed, "Seed")


def check_top_k(top_k, k: int = APP_TOP_K_MAX) -> int | None:
    """Top-k: 0 or empty (off), or a whole number from 1 to K."""
    if top_k is None or top_k == "" or top_k == 0:
        return None
    if isinstance(top_k, str):
        raise ValueError(f"Top-k must be 0 (off) or a whole number from 1 to {k}, got {shown(top_k)}")
    try:
        return check_whole(top_k, "Top-k", 1, k)
    except ValueError:
        raise ValueError(f"Top-k must be 0 (off) or a whole number from 1 to {k}, got {shown(top_k)}") from None


def check_top_p(top_p) -> float | None:
    """Top-p (nucleus): 1 or empty (off), or a number above 0 and below 1."""
    if top_p is None or top_p == "":
        return None
    p = sampling.check_top_p(top_p, "Top-p", note=" (1: off)")
    return None if p == 1 else p


def check_learning_rate(value) -> float:
    """A learning rate above 0 and at most 1."""
    if value is None or value == "":
        raise ValueError("Learning rate must be a number above 0 and at most 1; the box is empty")
    return number(value, "Learning rate", 0, 1, above_low=True)


def check_choice(value, field: str, choices) -> str:
    """One of ``choices`` (strings), or a ValueError naming the field and the choices."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{field} must be one of {', '.join(choices)}, got {shown(value)}")
    return value


def check_class(model: pixelar.interface.PixelModel, digit, names: list[str]) -> int | None:
    """The class to condition on (None: one of each in turn). Models that ignore the class accept anything."""
    if not model.conditional:
        return None
    if digit is None or digit == ALL_CLASSES:
        return None
    field = "Digit" if tuple(names) == pixelar.data.DIGITS else "Class"
    return check_whole(digit, field, 0, len(names) - 1)


def fresh_seed() -> int:
    return random.randint(0, SEED_MAX)


def next_seed(seed, new_each_time: bool) -> int:
    """The seed to use now: a new random one if asked for, else the one given; an empty box without "New seed each
    time" is refused (a random seed there would repeat nothing)."""
    seed = check_seed(seed)
    if new_each_time:
        return fresh_seed()
    if seed is None:
        raise ValueError(f"Seed is empty: type a seed from 0 to {SEED_MAX}, or tick New seed each time")
    return seed


# ---- the sampler controls, shared by every tab that samples ----


def model_picker(shelf: Shelf, elem_id: str | None = None) -> gr.Dropdown:
    """A model dropdown; ``allow_custom_value`` so that the server, not the widget, judges unknown names."""
    return gr.Dropdown(
        choices=shelf.choices(None),
        value=shelf.default(None),
        label="Model",
        info=None if shelf.shipped() else shelf.hint(),
        allow_custom_value=True,
        elem_id=elem_id,
        elem_classes="model-picker",
    )


def refresh_picker(shelf: Shelf, current: str | None, workspace: Workspace | None) -> gr.Dropdown:
    """The picker's choices now (checkpoints written since, models trained in this session), keeping its value."""
    choices = shelf.choices(workspace)
    names = [name for _, name in choices]
    value = current if current in names else shelf.default(workspace)
    return gr.Dropdown(choices=choices, value=value, info=None if choices else shelf.hint())


def class_picker(shelf: Shelf, with_all: bool = True, label: str | None = None) -> gr.Radio:
    """The digit (class) to draw, fitted to the picker's first model; ``with_all``: offer "all, in turn"."""
    first = ALL_CLASSES if with_all else 0
    props = class_picker_props(shelf, shelf.default(None), None, first, with_all)
    if label:
        props["label"] = label
    return gr.Radio(**props, elem_classes="class-picker")


def class_picker_for(
    shelf: Shelf, name: str | None, workspace: Workspace | None, current, with_all: bool = True
) -> gr.Radio:
    """The class picker refitted to another model (an update for ``class_picker``)."""
    return gr.Radio(**class_picker_props(shelf, name, workspace, current, with_all))


def class_picker_props(shelf: Shelf, name: str | None, workspace: Workspace | None, current, with_all: bool) -> dict:
    """Choices, value and state of the class picker for a model: its class names, or disabled with the reason
    for a model that ignores the class."""
    names = list(pixelar.data.DIGITS)
    model = None
    if name:
        try:
            model = shelf.get(name, workspace)
            names = shelf.class_names(model)
        except USER_ERRORS as error:
            return {"label": "Digit", "interactive": False, "info": as_html(error)}
    choices = ([("all, in turn", ALL_CLASSES)] if with_all else []) + [(n, i) for i, n in enumerate(names)]
    value = current if current in [v for _, v in choices] else choices[0][1]
    props = {"choices": choices, "value": value, "label": "Digit" if tuple(names) == pixelar.data.DIGITS else "Class"}
    if model is None:
        return {**props, "interactive": False, "info": "Pick a model first."}
    if not model.conditional:
        reason = f"{model.name.upper()} ignores the class: it is not class-conditional."
        return {**props, "interactive": False, "info": reason}
    return {**props, "interactive": True, "info": None}


def temperature_box(info: str | None = None, elem_id: str | None = None) -> gr.Number:
    """Temperature as a number box: a value out of range is refused with a message, never clamped."""
    low, high = APP_TEMPERATURE_RANGE
    return gr.Number(value=1.0, step=0.05, label="Temperature", info=info or f"{low:g} to {high:g}",
                     elem_id=elem_id, min_width=100)


def seed_box() -> gr.Number:
    """The seed box: it always shows the seed used, so a result can be repeated."""
    return gr.Number(value=fresh_seed(), label="Seed", info="0 to 2³¹ − 1", min_width=120, scale=2, elem_classes="seed-box")


def new_seed_box() -> gr.Checkbox:
    return gr.Checkbox(value=True, label="New seed each time", min_width=120)  # untick to repeat a result


@dataclass
class Settings:
    """Checked sampler settings: the model and everything ``Services.sample`` needs besides ``n``."""

    name: str
    model: pixelar.interface.PixelModel
    class_names: list[str]
    label: int | None  # None: one of each in turn (or a model that ignores the class)
    temperature: float
    top_k: int | None
    top_p: float | None
    seed: int
    title: str | None = None  # what captions call the model (``Shelf.title``); None: its name

    def shown(self) -> str:
        """The model's name as captions show it (plain text: each view escapes it)."""
        return self.title or self.name

    def sample_kwargs(self) -> dict:
        return {"labels": self.label, "temperature": self.temperature, "seed": self.seed,
                "top_k": self.top_k, "top_p": self.top_p}

    def class_name(self, label: int) -> str | None:
        return self.class_names[label] if self.model.conditional else None

    def describe(self) -> str:
        """``temperature 1, top-k 5, seed 42``."""
        parts = [f"temperature **{self.temperature:g}**"]
        if self.top_k is not None:
            parts.append(f"top-k **{self.top_k}**")
        if self.top_p is not None:
            parts.append(f"top-p **{self.top_p:g}**")
        return ", ".join(parts + [f"seed **{self.seed}**"])


@dataclass
class SamplerControls:
    """Model, class, temperature, top-k, top-p and seed: built, wired (model -> class picker) and checked in one
    place. ``inputs`` feed ``read``, the one validation path."""

    shelf: Shelf
    model: gr.Dropdown
    digit: gr.Radio
    temperature: gr.Number | None
    top_k: gr.Number | None
    top_p: gr.Number | None
    seed: gr.Number
    new_seed: gr.Checkbox
    with_all: bool

    @property
    def inputs(self) -> list:
        boxes = [self.model, self.digit, self.temperature, self.top_k, self.top_p, self.seed, self.new_seed]
        return [box for box in boxes if box is not None]

    def link_keys(self) -> dict:
        """The controls a link carries (``demo.links``), by query key."""
        keys = {"model": self.model, "digit": self.digit, "t": self.temperature, "k": self.top_k, "p": self.top_p,
                "seed": self.seed}
        return {key: box for key, box in keys.items() if box is not None}

    def read(self, workspace: Workspace | None, *values) -> Settings:
        """Check the controls' values (in ``inputs`` order) and draw the seed: ``Settings`` or a ValueError that
        names the field and its allowed range."""
        it = iter(values)
        name, digit = next(it), next(it)
        t = next(it) if self.temperature is not None else 1.0
        top_k = next(it) if self.top_k is not None else None
        top_p = next(it) if self.top_p is not None else None
        seed, new_each_time = next(it), next(it)
        temperature, seed = check_temperature(t), next_seed(seed, new_each_time)
        top_p = check_top_p(top_p)
        model = self.shelf.get(name, workspace)
        names = self.shelf.class_names(model)
        return Settings(
            name=name, model=model, class_names=names, label=check_class(model, digit, names),
            temperature=temperature, top_k=check_top_k(top_k, model.k), top_p=top_p,
            seed=seed, title=self.shelf.title(name),
        )


def sampler_controls(
    shelf: Shelf, session: gr.State, *, with_all: bool = True, temperature: bool = True, nucleus: bool = True,
    model: gr.Dropdown | None = None, class_label: str | None = None, temperature_info: str | None = None,
    after_class=None, settings_label: str | None = None, beside_new_seed=None,
) -> SamplerControls:
    """Build the sampler controls in the current layout and refit the class picker whenever the model changes.
    Temperature, top-k, top-p and the seed share one row, so that a tab's controls fit a projector's 720 pixels.
    ``model``: a model picker built elsewhere in the tab (default: one built here, first). ``after_class``: called
    to build more of the layout between the class picker and the other controls. ``beside_new_seed``: called to
    build the tab's own boxes in the row of "New seed each time". ``settings_label``: fold temperature, top-k,
    top-p and seed into a closed accordion of that name (to save height)."""
    model = model or model_picker(shelf)
    digit = class_picker(shelf, with_all=with_all, label=class_label)
    if after_class is not None:
        after_class()  # e.g. the tab's main buttons, high on a projector's screen
    t_box = k_box = p_box = None
    with gr.Accordion(settings_label, open=False) if settings_label else contextlib.nullcontext():
        with gr.Row(elem_classes="sampler-row"):
            if temperature:
                t_box = temperature_box(temperature_info)
            if nucleus:
                k_box = gr.Number(value=0, label="Top-k", info=f"0 off, to {APP_TOP_K_MAX}", min_width=80, elem_classes="top-k")
                p_box = gr.Number(value=1, label="Top-p", info="1 off, 0 to 1", step=0.05, min_width=80,
                                  elem_classes="top-p")
            seed = seed_box()
        with gr.Row(elem_classes="sampler-row"):
            new_seed = new_seed_box()
            if beside_new_seed is not None:
                beside_new_seed()
    controls = SamplerControls(shelf, model, digit, t_box, k_box, p_box, seed, new_seed, with_all)
    model.change(
        lambda name, current, workspace: class_picker_for(shelf, name, workspace, current, with_all=with_all),
        inputs=[model, digit, session], outputs=[digit], api_visibility="private", queue=False,
    )
    return controls
