"""The one check for whole-number inputs (counts, seeds, labels, tokens, steps): integers or integral floats
within a range, else a ValueError that names the input and its range. Nothing is truncated or clamped."""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def whole_number(value, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``low..high``; 3 and 3.0 pass, 3.7, True, "3" and NaN do not."""
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {_shown(value)}")
    whole = isinstance(value, numbers.Integral) or math.isfinite(value) and float(value).is_integer()
    if not (whole and low <= value <= high):  # an int is compared as it is: 10**400 has no float
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {_shown(value)}")
    return int(value)


def _shown(value, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: a 400-digit number is not echoed whole."""
    if isinstance(value, int) and abs(value) >= 10**limit:  # repr of a huge int is slow, and capped by Python
        return f"a number of more than {limit} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def whole_numbers(values, name: str, low: int, high: int) -> np.ndarray:
    """An array of whole numbers in ``low..high`` as int64, any shape; the same rules as ``whole_number``."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be whole numbers from {low} to {high}") from None
    if array.dtype == bool or array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be whole numbers from {low} to {high}, got {array.dtype} values")
    if array.size:
        as_float = array.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
            raise ValueError(f"{name} must be whole numbers from {low} to {high}; got a fraction or NaN")
        if as_float.min() < low or as_float.max() > high:
            bad = sorted({int(v) for v in as_float.flat if not low <= v <= high})[:5]
            raise ValueError(f"{name} must be from {low} to {high}, got {bad}")
    return array.astype(np.int64)
