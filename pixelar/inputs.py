"""The checks for outside inputs, one per kind: whole numbers (counts, seeds, labels, tokens, steps: integers or
integral floats) and real numbers (temperatures, rates), each within a range, else a ValueError that names the
input and its range. Nothing is truncated or clamped; no input, however large, raises anything else. And the one
cleaning of outside text (names in files and file names): invalid Unicode and invisible characters replaced."""
from __future__ import annotations

import math
import numbers
import unicodedata

import numpy as np
import torch


def whole_number(value, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``low..high``; 3 and 3.0 pass, 3.7, True, "3" and NaN do not."""
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {shown(value)}")
    whole = isinstance(value, numbers.Integral) or math.isfinite(value) and float(value).is_integer()
    if not (whole and low <= value <= high):  # an int is compared as it is: 10**400 has no float
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {shown(value)}")
    return int(value)


def shown(value, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: a 400-digit number is not echoed whole."""
    if isinstance(value, int) and abs(value) >= 10**limit:  # repr of a huge int is slow, and capped by Python
        return f"a number of more than {limit} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number(value, name: str, low: float, high: float, *, above_low: bool = False, note: str = "") -> float:
    """``value`` as a finite float from ``low`` (or above it, ``above_low``) to ``high``; "0.5" passes, "abc", None,
    True, NaN and 10**400 do not. ``note``: said after the range in the message (e.g. " (1: off)")."""
    allowed = f"a number {'above' if above_low else 'from'} {low:g} {'and at most' if above_low else 'to'} {high:g}{note}"
    try:
        x = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not (math.isfinite(x) and (low < x if above_low else low <= x) and x <= high):
        raise ValueError(f"{name} must be {allowed}, got {shown(value)}")
    return x


def within(bounds: tuple, core: tuple, name: str) -> tuple:
    """``bounds`` (low, high) if they narrow ``core`` (low <= high, both inside it), else a ValueError: a caller's
    limits are the core's, narrowed, never widened."""
    low, high = bounds
    if not core[0] <= low <= high <= core[1]:
        raise ValueError(f"{name} bounds {low:g} to {high:g} are not within the core's {core[0]:g} to {core[1]:g}")
    return bounds


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


def clean_text(value: str) -> str:
    """``value`` with each lone surrogate (invalid Unicode, as from a non-UTF-8 file name), control character and
    invisible format character (right-to-left overrides, zero-width marks) replaced by U+FFFD."""
    return "".join("\ufffd" if unicodedata.category(c) in ("Cs", "Cc", "Cf") else c for c in value)
