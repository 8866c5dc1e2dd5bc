"""What the tabs share: input checks, the error wrapper that keeps stack traces out of the browser, and the
controls for picking a model, a class, a temperature and a seed."""
from __future__ import annotations

import functools
import html
import inspect
import logging
import math
import random
from dataclasses import dataclass, field

import gradio as gr

import pixelar

from .models import Shelf, Workspace

log = logging.getLogger(__name__)

TEMPERATURE_RANGE = (0.1, 2.0)
MAX_SAMPLES = 64  # per Generate click: about 4 s for V3 on a 2-core CPU
SEED_MAX = 2**31 - 1
ALL_CLASSES = -1  # the class picker's "one of each, in turn"
USER_ERRORS = (ValueError, pixelar.CheckpointError, pixelar.DataUnavailable)


@dataclass
class BuiltTab:
    """A tab as ``app.py`` needs it: the tab, and the model pickers to refresh whenever it opens."""

    tab: gr.Tab
    pickers: list[gr.Dropdown] = field(default_factory=list)


def user_message(error: Exception) -> gr.Error:
    """A short, HTML-safe message for the browser; unexpected errors are logged here and named only."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, USER_ERRORS):
        return gr.Error(html.escape(str(error), quote=False), print_exception=False)
    log.exception("unexpected error in an event handler")
    text = f"Something went wrong ({type(error).__name__}). The app is still running; please try again."
    return gr.Error(text, print_exception=False)


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


def check_temperature(temperature) -> float:
    """A temperature from the allowed range, or a ValueError saying what is allowed."""
    low, high = TEMPERATURE_RANGE
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number from {low} to {high}, got {temperature!r}") from None
    if not (math.isfinite(t) and low <= t <= high):
        raise ValueError(f"temperature must be from {low} to {high}, got {temperature!r}")
    return t


def check_count(n) -> int:
    """A number of samples from 1 to MAX_SAMPLES."""
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"number of samples must be a whole number from 1 to {MAX_SAMPLES}, got {n!r}")
    return n


def check_seed(seed) -> int | None:
    """A seed from 0 to 2**31 - 1, or None (draw one)."""
    if seed is None or seed == "":
        return None
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be a whole number from 0 to {SEED_MAX}, got {seed!r}")
    return seed


def check_class(model: pixelar.models.PixelMLP, digit, names: list[str]) -> int | None:
    """The class to condition on (None: one of each in turn). Models that ignore the class accept anything."""
    if not model.conditional:
        return None
    if isinstance(digit, float) and digit.is_integer():
        digit = int(digit)
    if digit is None or digit == ALL_CLASSES:
        return None
    if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit < len(names):
        raise ValueError(f"digit must be from 0 to {len(names) - 1} (or {ALL_CLASSES} for one of each), got {digit!r}")
    return digit


def fresh_seed() -> int:
    return random.randint(0, SEED_MAX)


def next_seed(seed, new_each_time: bool) -> int:
    """The seed to use now: a new random one if asked for (or if the box is empty), else the one given."""
    seed = check_seed(seed)
    return fresh_seed() if new_each_time or seed is None else seed


# ---- controls shared by the Generate and Step-through tabs ----


def model_picker(shelf: Shelf, elem_id: str | None = None) -> gr.Dropdown:
    """A model dropdown; ``allow_custom_value`` so that the server, not the widget, judges unknown names."""
    return gr.Dropdown(
        choices=shelf.choices(None),
        value=shelf.default(None),
        label="Model",
        info=None if shelf.shipped() else shelf.hint(),
        allow_custom_value=True,
        elem_id=elem_id,
    )


def refresh_picker(shelf: Shelf, current: str | None, workspace: Workspace | None) -> gr.Dropdown:
    """The picker's choices now (checkpoints written since, models trained in this session), keeping its value."""
    choices = shelf.choices(workspace)
    names = [name for _, name in choices]
    value = current if current in names else shelf.default(workspace)
    return gr.Dropdown(choices=choices, value=value, info=None if choices else shelf.hint())


def class_picker(shelf: Shelf, with_all: bool = True) -> gr.Radio:
    """The digit (class) to draw, fitted to the picker's first model; ``with_all``: offer "all, in turn"."""
    first = ALL_CLASSES if with_all else 0
    return gr.Radio(**class_picker_props(shelf, shelf.default(None), None, first, with_all))


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
            return {"label": "Digit", "interactive": False, "info": html.escape(str(error), quote=False)}
    choices = ([("all, in turn", ALL_CLASSES)] if with_all else []) + [(n, i) for i, n in enumerate(names)]
    value = current if current in [v for _, v in choices] else choices[0][1]
    props = {"choices": choices, "value": value, "label": "Digit" if tuple(names) == pixelar.data.DIGITS else "Class"}
    if model is None:
        return {**props, "interactive": False, "info": "Pick a model first."}
    if not model.conditional:
        reason = f"{model.name.upper()} ignores the class: it is not class-conditional (only V3 is)."
        return {**props, "interactive": False, "info": reason}
    return {**props, "interactive": True, "info": None}


def temperature_slider(info: str | None = None, elem_id: str | None = None) -> gr.Slider:
    low, high = TEMPERATURE_RANGE
    return gr.Slider(low, high, value=1.0, step=0.05, label="Temperature", info=info, elem_id=elem_id)


def seed_controls() -> tuple[gr.Number, gr.Checkbox]:
    """A seed box (always showing the seed used, so a result can be repeated) and a "new seed each time" box."""
    seed = gr.Number(value=fresh_seed(), label="Seed", precision=0, minimum=0, maximum=SEED_MAX, min_width=120)
    new_each_time = gr.Checkbox(value=True, label="New seed each time", info="Untick to repeat a result.")
    return seed, new_each_time
