"""The one model interface: what every pixelar model is and does, and the registry that everything else reads.

A new model is one file: a config dataclass whose fields say their limits (``setting``), and a ``PixelModel``
subclass that fills in the members below and is registered with ``@register``. The training loop, the sampler,
the evaluator, checkpoints (their hostile-file checks included), the CLI's flags and the app's pickers all read
``MODELS`` and these members; none names a model. ``tests/test_interface.py`` proves it with a model that lives in
the test file alone.

Tokens are intensity bins ``0..K-1`` of the 28x28 image in raster order; ``start_token`` (``K``) pads what lies
before the first pixel. Labels are class indices. Logits are over the K bins.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from .inputs import shown
from .memory import check_sampling_memory


def setting(default, low, high, label: str, *, below_high: bool = False, flag: bool = True):
    """A config field with its allowed range: ``low..high`` (``below_high``: ``high`` itself excluded). ``label``
    names it in messages and in the CLI's help; ``flag=False`` keeps it off the CLI (set from the data instead)."""
    return dataclasses.field(default=default, metadata={"range": (low, high), "label": label,
                                                        "below_high": below_high, "flag": flag})


def settings(config_class) -> dict[str, dataclasses.Field]:
    """The fields of a config class, by name."""
    return {f.name: f for f in dataclasses.fields(config_class)}


def check_settings(config_class, values: dict, owner: str = "") -> dict:
    """``values`` (settings by name, from code, a form or a file) checked against ``config_class``'s ranges: an
    unknown name, a fraction or bool in a whole-number setting, a non-finite number or one out of range raises a
    ValueError that names the setting (and ``owner``, the model's name, where one is unknown). Returns ``values``."""
    fields = settings(config_class)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{owner or config_class.__name__} has no setting {', '.join(map(str, unknown))[:80]}; "
                         f"it has {', '.join(fields)}")
    for name, value in values.items():
        meta = fields[name].metadata
        if "range" not in meta:
            raise ValueError(f"{config_class.__name__}.{name} has no stated range (declare it with setting())")
        (low, high), label = meta["range"], meta["label"]
        if isinstance(fields[name].default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
            allowed = f"{low}" if low == high else f"a whole number from {low} to {high}"
        else:
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                  and low <= value and (value < high if meta["below_high"] else value <= high))
            allowed = f"a number from {low:g} to {high:g}{' (not included)' if meta['below_high'] else ''}"
        if not ok:
            raise ValueError(f"{label} must be {allowed}, got {shown(value)}")
    return values


class PixelModel(nn.Module):
    """What every model is and does (one commented line per member). Subclasses set the class attributes and
    implement the methods that raise ``NotImplementedError`` here."""

    # -- what it is: read by the CLI, checkpoints and the app -------------------------------------------------
    name: ClassVar[str] = ""  # registry key and checkpoint tag, e.g. "v3"
    description: ClassVar[str] = ""  # a few words for pickers and `python -m pixelar models`
    config_class: ClassVar[type] = type(None)  # its config dataclass; every field declared with setting()
    conditional: ClassVar[bool] = False  # takes the class label (can be asked for a digit, reads by Bayes' rule)
    uses_position: ClassVar[bool] = False  # knows which pixel it predicts
    sees_whole_past: ClassVar[bool] = False  # every earlier pixel; else the ``config.context`` pixels before it
    # -- how it trains ------------------------------------------------------------------------------------------
    learning_rate: ClassVar[float] = 1e-3  # AdamW's default learning rate for it
    weight_decay: ClassVar[float] = 1e-5  # AdamW's default weight decay for it
    batch_unit: ClassVar[str] = "pixels"  # what a step draws: "pixels" ((image, pixel) pairs) or whole "images"
    default_batch_size: ClassVar[int] = 512  # of batch_unit
    # -- how it samples -----------------------------------------------------------------------------------------
    sampling_precisions: ClassVar[tuple[str, ...]] = ("fp32",)  # step paths pixelar.planner may time: fp32, bf16, int8
    sampling_memory_terms: ClassVar[str] = ""  # what its sampling memory is made of, for the refusal message

    def __init__(self, config):
        """Checks ``config`` against its settings' ranges and the sampling memory cap, before any allocation."""
        super().__init__()
        check_settings(type(config), dataclasses.asdict(config))
        check_sampling_memory(type(self), config)
        self.config = config  # the config dataclass it was built from
        self.metadata: dict = {}  # filled from a checkpoint: data set, training budget, measured NLL

    @property
    def k(self) -> int:
        """Intensity bins."""
        return self.config.k

    @property
    def start_token(self) -> int:
        """The token that stands for "before the first pixel"."""
        return self.config.k

    @classmethod
    def sampling_bytes(cls, config) -> int:
        """Working memory of sampling beyond the weights, at the planner's largest tile (bytes)."""
        raise NotImplementedError

    @classmethod
    def train_bytes_per_sample(cls, config) -> int:
        """Training memory per sample of ``batch_unit`` (bytes; activations and their gradients)."""
        raise NotImplementedError

    def image_logits(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, 784) tokens, (B,) labels -> (B, 784, K) logits; pixel t's logits see only pixels < t."""
        raise NotImplementedError

    def onehot_logits(self, onehot: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``image_logits`` of (B, 784, K) one-hot rows, differentiable in them ("where it looked")."""
        raise NotImplementedError

    def training_loss(self, tokens: torch.Tensor, labels: torch.Tensor, batch_size: int, generator) -> Callable:
        """A function that draws ``batch_size`` samples of ``batch_unit`` with ``generator`` and returns their mean
        NLL in nats (the one training loop calls it once per step)."""
        raise NotImplementedError

    def begin(self, labels: torch.Tensor, dtype: torch.dtype = torch.float32) -> Any:
        """Sampling state for ``len(labels)`` images, computing in ``dtype`` (one of ``sampling_precisions``)."""
        raise NotImplementedError

    def step(self, state: Any, t: int, canvas: torch.Tensor) -> torch.Tensor:
        """fp32 logits (n, K) for pixel ``t``; ``canvas`` (n, 784) holds the tokens of pixels < t."""
        raise NotImplementedError


MODELS: dict[str, type[PixelModel]] = {}  # every registered model, in registration order (the pickers' order)
REQUIRED = ("image_logits", "onehot_logits", "training_loss", "begin", "step", "sampling_bytes", "train_bytes_per_sample")


def register(cls: type[PixelModel]) -> type[PixelModel]:
    """Add a model class to ``MODELS`` (a class decorator); a ValueError if it does not fill in the interface."""
    if not (isinstance(cls, type) and issubclass(cls, PixelModel)):
        raise ValueError(f"{cls!r} is not a PixelModel")
    if not cls.name or cls.name in MODELS and MODELS[cls.name] is not cls:
        raise ValueError(f"a model needs a name of its own, got {cls.name!r}")
    missing = [m for m in REQUIRED if _function(cls, m) is _function(PixelModel, m)]
    if missing or not dataclasses.is_dataclass(cls.config_class):
        raise ValueError(f"{cls.__name__} does not fill in {', '.join(missing) or 'config_class'}")
    MODELS[cls.name] = cls
    return cls


def _function(cls: type, member: str):
    """The function behind a method or classmethod of ``cls``."""
    attribute = getattr(cls, member)
    return getattr(attribute, "__func__", attribute)
