"""Where it looked: the step player's influence maps, computed on demand for the step on screen.

A player value registers what its maps need (the model, each panel's tokens, the label) under an unguessable id
that travels in the value. The page then calls ``where_it_looked``, a server function of the player's ``gr.HTML``
(which gets no session state), with that id, a panel and a step. Every argument is checked as hostile input:
a bad one gets a message the page shows, never a traceback.

The app keeps one ``Registry`` (built in ``app.build_app``, in ``demo.services.Services``), passed to these functions.
"""
from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from torch import nn

from pixelar.inputs import whole_number
from pixelar.models import N_PIXELS

from . import serving

log = logging.getLogger(__name__)

REMEMBERED = 256  # player values whose maps can still be asked for; older ones are forgotten
ID_MAX_LENGTH = 64
EXPIRED = (f"This image is no longer on the server (it keeps the newest {REMEMBERED} sampled images): "
           "press Sample to draw a new one.")


@dataclass(frozen=True)
class Looking:
    """What the maps of one player value need: the model, each panel's tokens (panels, 784), the label."""

    model: nn.Module
    tokens: np.ndarray
    label: int


class Registry:
    """The ``capacity`` most recently used registrations, by random id; the least recently used go first."""

    def __init__(self, capacity: int = REMEMBERED):
        self.capacity = capacity
        self._entries: OrderedDict[str, Looking] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, looking: Looking) -> str:
        key = secrets.token_urlsafe(18)
        with self._lock:
            self._entries[key] = looking
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return key

    def get(self, key: str) -> Looking | None:
        with self._lock:
            looking = self._entries.get(key)
            if looking is not None:
                self._entries.move_to_end(key)
            return looking

    def __len__(self) -> int:
        return len(self._entries)


def register(registry: Registry, model: nn.Module, panels_tokens: list, label: int) -> str:
    """Remember a player value's model, tokens (one (784,) array per panel) and label in ``registry``; returns
    its id."""
    tokens = np.stack([np.asarray(t, dtype=np.int64).reshape(N_PIXELS) for t in panels_tokens])
    return registry.add(Looking(model, tokens, int(label)))


def _check(registry: Registry, ask) -> tuple[Looking, int, int]:
    """The registration, panel and step an ask names, or a ValueError saying what is wrong."""
    if not isinstance(ask, dict):
        raise ValueError("where it looked: expected {id, panel, step}")
    key, panel, step = ask.get("id"), ask.get("panel"), ask.get("step")
    if not isinstance(key, str) or not 0 < len(key) <= ID_MAX_LENGTH:
        raise ValueError("where it looked: the image id is missing or malformed")
    looking = registry.get(key)
    if looking is None:
        raise ValueError(EXPIRED)
    panel = whole_number(panel, "where it looked: panel", 0, len(looking.tokens) - 1)
    step = whole_number(step, "where it looked: step", 0, N_PIXELS - 1)
    return looking, panel, step


def where_it_looked(registry: Registry, batcher: serving.Batcher, ask) -> dict:
    """The page's ``{"id", "panel", "step"}`` -> ``{"map", "max", "ms", "panel", "step"}``: ``map`` is base64 of
    784 little-endian float16, each pixel's influence divided by the step's largest (``max``; all zero when
    nothing before the step moves it); ``ms`` the compute time. A bad ask -> ``{"error": message}``. The ids are
    ``registry``'s; the maps are computed by ``batcher`` (after its sampling run in progress)."""
    try:
        looking, panel, step = _check(registry, ask)
    except ValueError as error:
        return {"error": str(error)}
    began = time.perf_counter()
    try:
        values = batcher.influence(looking.model, looking.tokens[panel], looking.label, step).reshape(N_PIXELS)
    except serving.Busy as error:
        return {"error": str(error)}
    except Exception as error:  # a bug, not bad input: logged, and the page still gets a sentence
        log.exception("where it looked failed")
        return {"error": f"Could not compute where it looked ({type(error).__name__})."}
    top = float(values.max())
    scaled = values / top if top > 0 else np.zeros_like(values)
    return {
        "map": base64.b64encode(scaled.astype("<f2").tobytes()).decode("ascii"),
        "max": top,
        "ms": round((time.perf_counter() - began) * 1000, 1),
        "panel": panel,
        "step": step,
    }
