"""V4: a class-conditional gated PixelCNN over the whole past (van den Oord et al. 2016), with cached sampling.

Two stacks of causal convolutions, as in "Conditional Image Generation with PixelCNN Decoders":

- the vertical stack ``v`` at (i, j) sees only rows above i (any column within its reach);
- the horizontal stack ``h`` at (i, j) sees row i left of j, plus ``v`` at (i, j) through a 1x1 link,
  so together they cover every earlier pixel in raster order: no blind spot.

Every gated block adds a class bias to both stacks' gates (``tanh(a) * sigmoid(b)``), has a residual
connection and channel dropout (4,500 images overfit a PixelCNN without it). Dilations cycling 1, 2, 4, 8
make the receptive field the whole past with ten blocks: every earlier pixel can move the prediction.

Sampling is incremental ("Fast Generation for Convolutional Autoregressive Models", Ramachandran et al. 2017):
``begin`` makes per-layer activation caches; ``step`` computes the vertical stack one row at a time (once per
row, when the row above is complete) and the horizontal stack at the one new position per layer, so a step
costs about one pixel's work. ``tests/test_v4.py`` checks its logits against ``image_logits``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .interface import PixelModel, register, setting
from .layers import IMAGE_SIZE, N_PIXELS, ChannelDropout
from .planner import TILES

FIRST_ROWS = 2  # the first vertical layer sees the 2 rows above ...
FIRST_HALF_WIDTH = 2  # ... in columns j-2 .. j+2
FIRST_LEFT = 3  # the first horizontal layer sees pixels j-3 .. j-1 of its own row


@dataclass
class V4Config:
    """V4: gated PixelCNN, vertical + horizontal stacks, class bias in every block."""

    k: int = setting(16, 2, 256, "K (intensity bins)")
    context: int = setting(N_PIXELS, N_PIXELS, N_PIXELS, "context length (V4 sees every earlier pixel)")
    channels: int = setting(64, 1, 1024, "channels (width of both stacks)")  # width of both stacks
    layers: int = setting(10, 1, 64, "layers (gated blocks)")  # gated blocks after the first layer
    dilation_cycle: int = setting(4, 1, 8, "dilation cycle")  # block l has dilation 2 ** (l % cycle): 1, 2, 4, 8, 1, ...
    token_dim: int = setting(16, 1, 1024, "token embedding size")
    head: int = setting(128, 1, 4096, "head width")  # hidden width of the 1x1 output head
    dropout: float = setting(0.1, 0.0, 1.0, "dropout", below_high=True)  # channel dropout on each block's output, training only
    num_classes: int = setting(10, 1, 1000, "number of classes", flag=False)  # from the data set


def dilations_of(c: V4Config) -> list[int]:
    """Block l's dilation: 2 ** (l % cycle)."""
    return [2 ** (layer % c.dilation_cycle) for layer in range(c.layers)]


def cache_geometry(dilations: list[int]) -> tuple[int, int]:
    """(padding of the sampling caches, rows in the vertical stack's ring) for these dilations."""
    return max(max(dilations), FIRST_ROWS, FIRST_HALF_WIDTH, FIRST_LEFT), max(dilations) + 1


def _gate(a: torch.Tensor, dim: int) -> torch.Tensor:
    x, y = a.chunk(2, dim)
    return torch.tanh(x) * torch.sigmoid(y)


def _shifted_conv(x: torch.Tensor, conv: nn.Conv2d, top: int, left: int) -> torch.Tensor:
    """``out[i, j] = sum_ab W[a, b] x[i + top + a*dh, j + left + b*dw]`` with zeros outside the image."""
    (kh, kw), (dh, dw) = conv.kernel_size, conv.dilation
    pad = (-left, left + (kw - 1) * dw, -top, top + (kh - 1) * dh)  # negative = crop
    return conv(F.pad(x, pad))


@register
class GatedPixelCNN(PixelModel):
    """V4. ``image_logits(tokens, labels)`` scores every pixel of whole images in one pass."""

    name = "v4"
    description = "gated PixelCNN over the whole past + class"
    config_class = V4Config
    conditional = True
    uses_position = True  # knows where it is from the image borders
    sees_whole_past = True
    learning_rate = 2e-3
    weight_decay = 1e-2
    batch_unit = "images"  # a training step sees whole images
    default_batch_size = 32
    sampling_precisions = ("fp32", "bf16")  # the paths its steps have (pixelar.planner times them)
    train_bytes_per_image = 50_000_000  # at 64 channels x 10 layers, measured by benchmarks/train_memory.py
    sampling_memory_terms = "its sampling caches are channels x layers x (2 x the largest dilation + 28) floats an image"

    def __init__(self, config: V4Config | None = None):
        c = config or V4Config()
        super().__init__(c)
        ch, n_in = c.channels, c.token_dim + 1  # + a constant 1 channel: zero padding marks the border
        self.token_embedding = nn.Embedding(c.k, c.token_dim)
        self.v_in = nn.Conv2d(n_in, ch, (FIRST_ROWS, 2 * FIRST_HALF_WIDTH + 1))
        self.h_in = nn.Conv2d(n_in, ch, (1, FIRST_LEFT))
        self.v_to_h_in = nn.Conv2d(ch, ch, 1, bias=False)
        self.class_in = nn.Embedding(c.num_classes, 2 * ch)  # class bias of v_in and h_in
        self.dilations = dilations_of(c)
        self.v_conv = nn.ModuleList(nn.Conv2d(ch, 2 * ch, (2, 3), dilation=d) for d in self.dilations)
        self.v_out = nn.ModuleList(nn.Conv2d(ch, ch, 1) for _ in self.dilations)
        self.h_conv = nn.ModuleList(nn.Conv2d(ch, 2 * ch, (1, 2), dilation=(1, d)) for d in self.dilations)
        self.v_to_h = nn.ModuleList(nn.Conv2d(ch, 2 * ch, 1, bias=False) for _ in self.dilations)
        self.h_out = nn.ModuleList(nn.Conv2d(ch, ch, 1) for _ in self.dilations)
        self.class_v = nn.Embedding(c.num_classes, c.layers * 2 * ch)  # per-block class bias, vertical gates
        self.class_h = nn.Embedding(c.num_classes, c.layers * 2 * ch)  # per-block class bias, horizontal gates
        self.head1 = nn.Conv2d(ch, c.head, 1)
        self.head2 = nn.Conv2d(c.head, c.k, 1)
        self.dropout = ChannelDropout(c.dropout)  # whole channels: 1.2x the step time of none, element-wise 1.7x

    @classmethod
    def sampling_bytes(cls, c: V4Config) -> int:
        """Working memory of sampling, beyond the weights: one tile's ``PixelCNNState`` caches, and one whole image's
        activations (``image_logits``), float32."""
        pad, ring = cache_geometry(dilations_of(c))
        width, ch, blocks = pad + IMAGE_SIZE + pad, c.channels, c.layers + 1
        per_image = (pad + IMAGE_SIZE) * width * (c.token_dim + 1) + blocks * ch * (ring * width + pad + IMAGE_SIZE + 2 * IMAGE_SIZE)
        one_pass = N_PIXELS * (c.token_dim + 1 + 8 * ch * blocks + c.head + c.k)
        return 4 * (max(TILES) * per_image + one_pass)  # the planner's largest tile

    @classmethod
    def train_bytes_per_sample(cls, c: V4Config) -> int:
        return cls.train_bytes_per_image * c.channels * c.layers // 640


    def _class_biases(self, labels: torch.Tensor):
        """(B,) labels -> input biases (B, 2C) and per-block gate biases, vertical and horizontal (B, L, 2C)."""
        c = self.config
        shape = (-1, c.layers, 2 * c.channels)
        return self.class_in(labels), self.class_v(labels).view(shape), self.class_h(labels).view(shape)

    def image_logits(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, 784) tokens, (B,) labels -> (B, 784, K) logits; the logits at pixel t see only pixels < t."""
        return self._logits_of_embedded(self.token_embedding(tokens), labels)

    def onehot_logits(self, onehot: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``image_logits`` of tokens given as (B, 784, K) one-hot rows: differentiable with respect to them."""
        return self._logits_of_embedded(onehot @ self.token_embedding.weight, labels)

    def _logits_of_embedded(self, embedded: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        b, ch = embedded.shape[0], self.config.channels
        x = embedded.view(b, IMAGE_SIZE, IMAGE_SIZE, -1).permute(0, 3, 1, 2)  # (B, E, 28, 28)
        x = torch.cat([x, torch.ones_like(x[:, :1])], 1)  # (B, E+1, 28, 28)
        v = _shifted_conv(x, self.v_in, -FIRST_ROWS, -FIRST_HALF_WIDTH)  # (B, C, 28, 28)
        # class biases in the convolutions' dtype (bf16 under autocast), so the sums stay in it
        cls_in, cls_v, cls_h = (b.to(v.dtype) for b in self._class_biases(labels))
        v = v + cls_in[:, :ch, None, None]
        h = _shifted_conv(x, self.h_in, 0, -FIRST_LEFT) + self.v_to_h_in(v) + cls_in[:, ch:, None, None]
        for layer, d in enumerate(self.dilations):
            a = _shifted_conv(v, self.v_conv[layer], -d, -d) + cls_v[:, layer, :, None, None]  # (B, 2C, 28, 28)
            v = v + self.v_out[layer](self.dropout(_gate(a, 1)))
            a = _shifted_conv(h, self.h_conv[layer], 0, -d) + self.v_to_h[layer](v) + cls_h[:, layer, :, None, None]
            h = h + self.h_out[layer](self.dropout(_gate(a, 1)))
        logits = self.head2(F.relu(self.head1(F.relu(h))))  # (B, K, 28, 28)
        return logits.flatten(2).transpose(1, 2)  # (B, 784, K)

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.image_logits(tokens, labels)

    def training_loss(self, tokens: torch.Tensor, labels: torch.Tensor, batch_size: int, generator) -> Callable:
        """A function drawing ``batch_size`` random whole images and returning their mean NLL (nats/pixel)."""

        def loss() -> torch.Tensor:
            image = torch.randint(len(tokens), (batch_size,), device=tokens.device, generator=generator)
            logits = self.image_logits(tokens[image], labels[image])
            return F.cross_entropy(logits.reshape(-1, self.k).float(), tokens[image].reshape(-1))

        return loss

    # -- incremental sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def begin(self, labels: torch.Tensor, dtype: torch.dtype = torch.float32) -> "PixelCNNState":
        """Empty activation caches for ``len(labels)`` images; ``dtype`` is the precision of the steps' arithmetic."""
        return PixelCNNState(self, labels, dtype)

    @torch.no_grad()
    def step(self, state: "PixelCNNState", t: int, canvas: torch.Tensor) -> torch.Tensor:
        """fp32 logits (n, K) for pixel ``t``; ``canvas`` (n, 784) holds the tokens of pixels < t."""
        return state.step(t, canvas).float()


class PixelCNNState:
    """Per-layer caches of one generation, channels last and zero padded as the convolutions see them.

    ``x``: (n, pad + 28, pad + 28 + pad, E+1) the embedded canvas; ``v[l]``: (n, ring, pad + 28 + pad, C) the
    vertical stack's last ``ring`` rows (row r in slot r % ring; a row reads the rows up to 8 above it);
    ``h[l]``: (pad + 28, n, C) the current row of the horizontal stack; ``link[l]``: (28, n, 2C) the current
    row's vertical-to-horizontal input plus biases. ``h`` and ``link`` are column first, so that one column is
    a contiguous (n, C) matrix a step's matmuls read and write in place (a step is ~60 small calls: every copy
    saved counts). Weights are cast to ``dtype`` once, here: autocast around each step would cast them again at
    every step.
    """

    def __init__(self, model: GatedPixelCNN, labels: torch.Tensor, dtype: torch.dtype):
        c, m = model.config, model
        n, ch, device = len(labels), c.channels, labels.device
        self.m, self.ch, self.dilations = m, ch, m.dilations
        self.pad, self.ring = cache_geometry(m.dilations)
        p = self.pad
        width = p + IMAGE_SIZE + p
        zeros = lambda *shape: torch.zeros(*shape, dtype=dtype, device=device)  # noqa: E731
        self.x = zeros(n, p + IMAGE_SIZE, width, c.token_dim + 1)
        self.x[:, p:, p : p + IMAGE_SIZE, -1] = 1.0  # the constant channel, inside the image only
        # slots of rows above the image (r < 0) are ones not yet written, so zero, as the padding they stand for
        self.v = [zeros(n, self.ring, width, ch) for _ in range(c.layers + 1)]
        self.h = [zeros(p + IMAGE_SIZE, n, ch) for _ in range(c.layers + 1)]
        self.link: list[torch.Tensor] = [None] * (c.layers + 1)  # (28, n, 2C) each, set at the start of a row

        def cast(w: torch.Tensor) -> torch.Tensor:
            return w.detach().to(dtype).contiguous()

        def matrix(conv: nn.Conv2d) -> torch.Tensor:  # a 1x1 convolution as a (C_in, C_out) matrix
            return cast(conv.weight[:, :, 0, 0].t())

        cls_in, cls_v, cls_h = (cast(b) for b in m._class_biases(labels))
        self.cls_v_in, self.cls_h_in = cls_in[:, None, :ch], cls_in[None, :, ch:]  # (n, 1, C), (1, n, C)
        self.cls_v = [b[:, :, None, None] for b in cls_v.unbind(1)]  # (n, 2C, 1, 1)
        self.cls_h = [b[None] for b in cls_h.unbind(1)]  # (1, n, 2C)
        self.embedding = cast(m.token_embedding.weight)  # (K, E)
        self.v_in = (cast(m.v_in.weight), cast(m.v_in.bias))
        self.v_conv = [(cast(conv.weight), cast(conv.bias)) for conv in m.v_conv]
        self.v_out = [(matrix(conv), cast(conv.bias)) for conv in m.v_out]
        # horizontal weights as matrices over (tap, channel) patches; a block's two taps (columns r - d and r) apart
        self.w_h_in = cast(m.h_in.weight[:, :, 0].permute(2, 1, 0).reshape(-1, ch))  # (3(E+1), C)
        self.w_h = [tuple(cast(conv.weight[:, :, 0, tap].t()) for tap in (0, 1)) for conv in m.h_conv]  # (C, 2C) each
        self.h_out = [(matrix(conv), cast(conv.bias)) for conv in m.h_out]  # (C, C), (C,)
        self.w_link = [matrix(m.v_to_h_in)] + [matrix(conv) for conv in m.v_to_h]
        self.link_bias = [cast(m.h_in.bias)] + [cast(conv.bias) for conv in m.h_conv]
        self.head = [(matrix(m.head1), cast(m.head1.bias)), (matrix(m.head2), cast(m.head2.bias))]

    def step(self, t: int, canvas: torch.Tensor) -> torch.Tensor:
        p = self.pad
        i, j = divmod(t, IMAGE_SIZE)
        if t > 0:
            pi, pj = divmod(t - 1, IMAGE_SIZE)
            self.x[:, p + pi, p + pj, :-1] = self.embedding[canvas[:, t - 1]]
        if j == 0:
            self._vertical_row(i)
        r = p + j  # column of pixel (i, j) in padded maps
        patch = self.x[:, p + i, r - FIRST_LEFT : r].reshape(len(canvas), -1)  # (n, 3(E+1))
        h = torch.addmm(self.link[0][j], patch, self.w_h_in, out=self.h[0][r])  # (n, C), written in its cache
        for layer, d in enumerate(self.dilations):
            w_left, w_here = self.w_h[layer]
            a = torch.addmm(self.link[layer + 1][j], self.h[layer][r - d], w_left).addmm_(h, w_here)  # (n, 2C)
            w_out, b_out = self.h_out[layer]
            h = torch.addmm(b_out, _gate(a, 1), w_out, out=self.h[layer + 1][r]).add_(h)
        (w1, b1), (w2, b2) = self.head
        return torch.addmm(b2, torch.addmm(b1, h.relu(), w1).relu_(), w2)  # (n, K)

    def _vertical_row(self, i: int) -> None:
        """Row ``i`` of every vertical layer and the horizontal stack's link inputs for it (rows < i are known)."""
        p = self.pad
        cols = slice(p, p + IMAGE_SIZE)
        slab = self.x[:, p + i - FIRST_ROWS : p + i, p - FIRST_HALF_WIDTH : p + IMAGE_SIZE + FIRST_HALF_WIDTH]
        v = F.conv2d(slab.permute(0, 3, 1, 2), *self.v_in)[:, :, 0].transpose(1, 2) + self.cls_v_in  # (n, 28, C)
        self.v[0][:, i % self.ring, cols] = v
        self.link[0] = (v.transpose(0, 1) @ self.w_link[0]).add_(self.link_bias[0]).add_(self.cls_h_in)  # (28, n, C)
        for layer, d in enumerate(self.dilations):
            rows = [(i - d) % self.ring, i % self.ring]
            slab = self.v[layer][:, rows, p - d : p + IMAGE_SIZE + d].permute(0, 3, 1, 2)  # (n, C, 2, 28+2d)
            a = F.conv2d(slab, *self.v_conv[layer], dilation=(1, d)) + self.cls_v[layer]  # (n, 2C, 1, 28)
            w_out, b_out = self.v_out[layer]
            v = torch.addmm(b_out, _gate(a, 1)[:, :, 0].transpose(1, 2).flatten(0, 1), w_out).view_as(v).add_(v)
            self.v[layer + 1][:, i % self.ring, cols] = v
            self.link[layer + 1] = (v.transpose(0, 1) @ self.w_link[layer + 1]).add_(self.link_bias[layer + 1]).add_(self.cls_h[layer])
