"""The step player: a sampled trace packed once for the page, and the ``gr.HTML`` component that plays it.

The server sends the trace (tokens, per-step log-probabilities, entropy, chosen probability, label and model
facts) once, as base64 of uint8 and float16 arrays; the page (``player.js``) then draws the canvas, the context
window, the bin bars (reshaped for another temperature, top-k or top-p), the heat maps and the numbers at any
step itself. Scrubbing and Play send no request. A click on a bar asks the server for a what-if through the
component's ``select`` event: ``index`` is the step, ``value`` the bin. With "Where it looked" ticked, a paused
player asks the server function ``where_it_looked`` (``demo.where_it_looked``) for the step on screen.
"""
from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

import pixelar
from pixelar import render

from .common import APP_TEMPERATURE_RANGE, APP_TOP_K_MAX

HERE = Path(__file__).resolve().parent
LOGP_FLOOR = -60.0  # log-probabilities below this (p < 1e-26) are sent as this; float16 keeps ~3 digits
_ids = itertools.count(1)

TEMPLATE = """
<div class="px-player" tabindex="-1">
  <div class="px-bar">
    <button class="px-home" title="First step (Home)">|◀</button>
    <button class="px-prev" title="One step back (←; Shift+← one row)">◀</button>
    <button class="px-play" title="Play / pause (Space)">▶ Play</button>
    <button class="px-next" title="One step on (→; Shift+→ one row)">▶</button>
    <button class="px-end" title="Finished image (End)">▶|</button>
    <input class="px-slider" type="range" min="0" max="784" value="0" step="1" aria-label="step">
    <label class="px-step-label">step <input class="px-step" type="number" min="0" max="784" step="1" value="0"
      aria-label="step number"> / 784</label>
    <select class="px-speed" aria-label="play speed" title="Play speed"></select>
    <span class="px-playing-badge" aria-live="polite">● playing</span>
  </div>
  <div class="px-empty">Press <b>Sample</b> to draw an image. Then scrub the slider, or press <b>Play</b>
    (keys: ←/→ one step, Shift+←/→ one row, Space play/pause, Home/End).</div>
  <div class="px-body" style="display:none">
    <div class="px-caption"></div>
    <div class="px-panels"></div>
    <div class="px-reshape">
      <span class="px-reshape-title">Reshape the bars:</span>
      <label>T <input class="px-t" type="range" min="__T_MIN__" max="__T_MAX__" step="0.05" value="1"><b class="px-t-value"></b></label>
      <label>top-k <input class="px-k" type="number" min="1" max="__K_MAX__" step="1" placeholder="off"></label>
      <label>top-p <input class="px-p" type="range" min="0.05" max="1" step="0.05" value="1"><b class="px-p-value"></b></label>
      <button class="px-reset">as sampled</button>
      <button class="px-back" style="display:none"></button>
      <span class="px-status" aria-live="polite"></span>
      <label class="px-look-toggle" title="Ask the server, for the step on screen while paused, how much each earlier pixel moved the chosen bin's log-probability (one forward and backward pass, about 40 ms): green dots on the canvas, larger where it mattered more, and a heat map"><input
        class="px-look" type="checkbox"> Where it looked</label>
      <button class="px-present" title="Fill the screen (Esc to leave)">Present (full screen)</button>
    </div>
  </div>
</div>
"""

# The reshape controls' bounds are the app's (``demo.common``): the page cannot ask for what a request may not.
# (player.js itself hard-codes no bounds: it reads the sliders' and clamps top-k to the trace's K.)
TEMPLATE = (TEMPLATE.replace("__T_MIN__", f"{APP_TEMPERATURE_RANGE[0]:g}")
            .replace("__T_MAX__", f"{APP_TEMPERATURE_RANGE[1]:g}").replace("__K_MAX__", str(APP_TOP_K_MAX)))


def _luts() -> str:
    from matplotlib import colormaps  # colour tables only

    table = {}
    for key, name in (("entropy", "magma"), ("surprise", "inferno"), ("looked", "viridis")):
        rgb = (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(int)
        table[key] = rgb.tolist()
    return json.dumps(table, separators=(",", ":"))


def player_js() -> str:
    """The player's script, given the colour tables, the colours (``pixelar.render.COLOURS``) and the surprise scale
    the server's pictures use, so that the page and the server draw alike."""
    return ((HERE / "player.js").read_text().replace("__LUTS__", _luts())
            .replace("__COLOURS__", json.dumps(render.css_colours(), separators=(",", ":")))
            .replace("__SURPRISE_MAX__", f"{render.SURPRISE_MAX_BITS:g}"))


def player_css() -> str:
    """The player's style, after one rule that sets ``pixelar.render.COLOURS`` as custom properties (--px-chosen, ...)."""
    colours = " ".join(f"--px-{name}: {value};" for name, value in render.css_colours().items())
    return f".px-player {{ {colours} }}\n" + (HERE / "player.css").read_text()


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """Per-step log-probabilities at temperature 1 (the logits up to a constant, which no reshaping sees)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def pack_panel(trace: pixelar.Trace, index: int = 0, title: str = "", forced_step: int | None = None) -> dict:
    """One image of a trace for the page: tokens (uint8), log-probabilities (float16, little-endian),
    entropy and chosen probability (float16)."""
    if trace.k > 256:
        raise ValueError(f"the player draws at most 256 bins, got {trace.k}")
    logp = np.maximum(_log_softmax(trace.logits[index]), LOGP_FLOOR).astype("<f2")  # (784, K)
    return {
        "title": title,
        "tokens": _b64(trace.tokens[index].astype(np.uint8)),
        "logp": _b64(logp),
        "entropy": _b64(trace.entropy[index].astype("<f2")),
        "chosen": _b64(trace.chosen_prob[index].astype("<f2")),
        "prefix_length": int(trace.prefix_length),
        "forced_step": forced_step,
    }


@dataclass
class Facts:
    """What the player says about the model that drew a trace."""

    model: str
    uses_position: bool
    class_name: str | None  # None: the model ignores the class


def payload(panels: list[dict], trace: pixelar.Trace, facts: Facts, caption: str, step: int = 0,
            looks: str | None = None, look: bool = False) -> dict:
    """The player's value: one or two packed images sharing a model, settings and step. ``looks``: the id under
    which ``demo.where_it_looked`` keeps what their maps need (None: no maps); ``look``: tick "Where it looked"."""
    return {
        "id": f"{next(_ids)}-{trace.seed}",
        "looks": looks,
        "k": int(trace.k),
        "context": int(trace.context),
        "temperature": float(trace.temperature),
        "top_k": getattr(trace, "top_k", None),
        "top_p": getattr(trace, "top_p", None),
        "seed": int(trace.seed),
        "model": facts.model,
        "uses_position": bool(facts.uses_position),
        "class_name": facts.class_name,
        "caption": caption,
        "step": int(step),
        "look": bool(look),
        "panels": panels,
    }


def size_in_bytes(value: dict) -> int:
    """What the page receives for a player value (its JSON)."""
    return len(json.dumps(value, separators=(",", ":")).encode())


def step_player(where_it_looked: Callable[[object], dict], elem_id: str = "step-player") -> gr.HTML:
    """The player component (empty until a value arrives); ``where_it_looked``: its server function (the app's is
    ``Services.where_it_looked``, which keeps the ids in the app's one registry)."""

    def where_it_looked_here(ask) -> dict:  # a function of its own: Gradio marks it, and the page calls it by name
        return where_it_looked(ask)

    where_it_looked_here.__name__ = "where_it_looked"
    return gr.HTML(
        value=None, html_template=TEMPLATE, css_template=player_css(), js_on_load=player_js(),
        elem_id=elem_id, elem_classes="px-host", apply_default_css=False, padding=False,
        server_functions=[where_it_looked_here],
    )
