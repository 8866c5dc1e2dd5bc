"""Image constants, the dropouts the model families share (both draw from the training run's generator), and the
linear layer the MLPs sample with in each precision path."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 28
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE


class Dropout(nn.Module):
    """Inverted dropout, as ``nn.Dropout``, with the mask drawn from random bytes: about half the time of
    ``nn.Dropout``'s Bernoulli draw on a CPU (3.7 vs 7.5 ms for a 512 x 1024 batch, measured here).

    ``p`` is honoured to 1/65536.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self._threshold = -(2**15) + round(p * 2**16)  # drop where a 16-bit draw is below this
        self.generator: torch.Generator | None = None  # set by the training loop: its run's own random stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        n_words = -(-x.numel() // 4)  # four 16-bit draws per int64
        bits = torch.randint(
            -(2**63), 2**63 - 1, (n_words,), dtype=torch.int64, device=x.device, generator=self.generator
        )
        keep = bits.view(torch.int16)[: x.numel()].view(x.shape) >= self._threshold
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))  # a multiply: 3x faster than masked_fill in bf16


class ChannelDropout(nn.Module):
    """Dropout of whole channels of a (B, C, ...) tensor, as ``nn.Dropout2d``, with the mask drawn from the
    training run's own generator."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.generator: torch.Generator | None = None  # set by the training loop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = (*x.shape[:2], *(1,) * (x.dim() - 2))
        keep = torch.rand(shape, device=x.device, generator=self.generator) >= self.p
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))


class SamplingLinear:
    """A linear layer (and optional ReLU) frozen for one sampling run of ``rows`` rows, in a precision path.

    fp32: ``F.linear``. bf16: on a CPU whose oneDNN has it, the weight pre-packed once for that row count and the
    ReLU fused (1.4-1.9x faster than ``F.linear`` + ``F.relu`` on an AMX machine, bit-identical); elsewhere
    ``F.linear`` in bf16. int8 (``torch.int8``): see ``Int8Linear``.
    """

    def __init__(self, layer: nn.Linear, dtype: torch.dtype, rows: int, relu: bool):
        self.relu, self.packed, self.int8 = relu, False, None
        if dtype == torch.int8:
            self.int8 = Int8Linear(layer, rows)
            return
        self.weight, self.bias = layer.weight.detach().to(dtype), layer.bias.detach().to(dtype)
        reorder, self.linear = private_op("mkldnn", "_reorder_linear_weight"), private_op("mkldnn", "_linear_pointwise")
        if dtype == torch.bfloat16 and self.weight.device.type == "cpu" and reorder and self.linear:
            try:
                self.weight, self.packed = reorder(self.weight, rows), True
            except RuntimeError:  # no bf16 kernel for this CPU
                pass

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.int8 is not None:
            y = self.int8(x)
        elif self.packed:
            return self.linear(x, self.weight, self.bias, "relu" if self.relu else "none", [], "")
        else:
            y = F.linear(x, self.weight, self.bias)
        return F.relu(y) if self.relu else y


class Int8Linear:
    """A linear layer on int8 weights (one scale per output) and activations quantised per row, for inputs >= 0
    (they follow a ReLU): each row is scaled so its largest value is ``int8_levels()``, rounded to bytes,
    multiplied in exact integer arithmetic by oneDNN (VNNI or AMX where the CPU has them), then scaled back.
    Both scales are per row and per output, so a row's result depends on that row alone, whatever the tile.
    """

    def __init__(self, layer: nn.Linear, rows: int):
        ops = int8_ops()
        if ops is None:
            raise RuntimeError("the int8 path needs oneDNN's quantised linear ops, which this torch lacks; use fp32 or bf16")
        prepack, self.qlinear = ops
        weight = layer.weight.detach().float()
        self.scale = weight.abs().amax(1).clamp_min(1e-30) / 127  # (out,)
        quantised = torch.round(weight / self.scale[:, None]).to(torch.int8)
        self.weight = prepack(quantised, [rows, weight.shape[1]])
        self.zero_points = torch.zeros(len(self.scale), dtype=torch.long)
        self.bias, self.levels = layer.bias.detach().float(), int8_levels()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        row_scale = x.amax(1, keepdim=True).clamp_min(1e-30) / self.levels  # (rows, 1)
        q = torch.round(x / row_scale).to(torch.uint8)
        y = self.qlinear(
            q, 1.0, 0, self.weight, self.scale, self.zero_points, None, 1.0, 0, torch.float32, "none", [], ""
        )
        return torch.addcmul(self.bias, y, row_scale)


@functools.cache
def int8_levels() -> int:
    """The largest activation byte that multiplies exactly here: 255, or 127 where the CPU's int8 instructions
    add pairs of byte products in 16 bits and saturate (AVX2 without VNNI), as measured on a worst case."""
    prepack, qlinear = int8_ops() or (None, None)
    if prepack is None:
        raise RuntimeError("this torch has no oneDNN quantised linear ops")
    weight = torch.full((8, 64), 127, dtype=torch.int8)
    packed = prepack(weight, [4, 64])
    x = torch.full((4, 64), 255, dtype=torch.uint8)
    y = qlinear(
        x, 1.0, 0, packed, torch.ones(8), torch.zeros(8, dtype=torch.long), None, 1.0, 0, torch.float32, "none", [], ""
    )
    return 255 if bool((y == 255 * 127 * 64).all()) else 127


def private_op(namespace: str, name: str):
    """``torch.ops.<namespace>.<name>``, or None where this torch build lacks it. The oneDNN ops used here
    (``mkldnn._reorder_linear_weight``, ``mkldnn._linear_pointwise``, ``onednn.qlinear_prepack``,
    ``onednn.qlinear_pointwise``) are torch internals, not public API: every use goes through this look-up and
    has a plain path for when it answers None."""
    try:
        return getattr(getattr(torch.ops, namespace), name)
    except (AttributeError, RuntimeError):
        return None


def int8_ops():
    """(``qlinear_prepack``, ``qlinear_pointwise``) from oneDNN, or None where this torch lacks either."""
    prepack, qlinear = private_op("onednn", "qlinear_prepack"), private_op("onednn", "qlinear_pointwise")
    return (prepack, qlinear) if prepack is not None and qlinear is not None else None


def int8_available(device: torch.device) -> bool:
    """Whether the int8 path runs here: a CPU, and a torch with oneDNN's quantised linear ops that run on it.
    Where it does not, the planner never offers int8 and an explicit request for it is refused."""
    if device.type != "cpu" or int8_ops() is None:
        return False
    try:
        int8_levels()
    except RuntimeError:  # the ops exist but have no kernel for this CPU (NotImplementedError included)
        return False
    return True
