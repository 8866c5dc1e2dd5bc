"""The seed's three next-pixel MLPs (V1-V3) behind one call shape, ``model(context, position, label)``, and the
registry of every model (``MODELS``, filled by ``pixelar.interface.register``; V4 is in ``pixelcnn.py``).

Each model's first layer sees a concatenation of per-slot features (one-hot or embedded context tokens,
row and column embeddings, class embedding). A linear layer of a concatenation of looked-up vectors is a
sum of looked-up rows of a pre-multiplied table, so ``fc1`` is computed as an ``embedding_bag`` over that
table. The parameters, their names and the function computed are exactly the seed's; only the arithmetic
is cheaper (no one-hot matrix, no 528-wide matmul). ``tests/test_models.py`` checks the equivalence.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .context import gather_context, pad_tokens
from .interface import MODELS, PixelModel, check_settings, register, setting  # noqa: F401  (MODELS: its old home)
from .layers import IMAGE_SIZE, N_PIXELS, Dropout, SamplingLinear
from .planner import TILES


@dataclass
class V1Config:
    """V1: one-hot context of the previous ``context`` tokens -> MLP -> K logits."""

    k: int = setting(16, 2, 256, "K (intensity bins)")  # token K is the start/padding token
    context: int = setting(28, 1, N_PIXELS, "context length")  # previous pixels the MLP sees (raster order)
    hidden: int = setting(1024, 1, 8192, "hidden width")  # width of both hidden layers
    dropout: float = setting(0.25, 0.0, 1.0, "dropout", below_high=True)  # after each hidden layer, training only


@dataclass
class V2Config(V1Config):
    """V2: V1 plus learned row and column embeddings of the pixel being predicted."""

    pos_dim: int = setting(32, 1, 1024, "position embedding size")


@dataclass
class V3Config(V2Config):
    """V3: learned token embeddings instead of one-hot, positions, and a class embedding."""

    token_dim: int = setting(16, 1, 1024, "token embedding size")
    class_dim: int = setting(16, 1, 1024, "class embedding size")
    num_classes: int = setting(10, 1, 1000, "number of classes", flag=False)  # from the data set


class PixelMLP(PixelModel):
    """Shared body: fc1 (as a table lookup) -> ReLU -> dropout -> fc2 -> ReLU -> dropout -> fc_out."""

    sampling_precisions = ("fp32", "bf16", "int8")
    train_bytes_per_pair = 34_400  # at hidden 1024, measured by benchmarks/train_memory.py; grows with hidden
    sampling_memory_terms = "its fc1 table is context x (K+1) x hidden floats"

    def __init__(self, config: V1Config, input_dim: int):
        super().__init__(config)
        self.fc1 = nn.Linear(input_dim, config.hidden)
        self.fc2 = nn.Linear(config.hidden, config.hidden)
        self.dropout = Dropout(config.dropout)
        self.fc_out = nn.Linear(config.hidden, config.k)

    @classmethod
    def table_rows(cls, config: V1Config) -> int:
        """Rows of ``fc1_table``: one per (context slot, token), plus V2's positions and V3's classes."""
        return config.context * (config.k + 1)

    @classmethod
    def sampling_bytes(cls, config: V1Config) -> int:
        """Working memory of sampling, beyond the weights: fc1's table twice (built, then joined), one tile's and one
        whole image's activations, and one image's one-hot windows (where it looked), all float32."""
        h = config.hidden
        return 4 * (2 * cls.table_rows(config) * h + 3 * (max(TILES) + N_PIXELS) * h
                    + 2 * N_PIXELS * config.context * (config.k + 1))

    @classmethod
    def train_bytes_per_sample(cls, config: V1Config) -> int:
        return cls.train_bytes_per_pair * config.hidden // 1024

    def fc1_table(self) -> torch.Tensor:
        """Rows whose sums give fc1's pre-activation without bias: (n_rows, hidden)."""
        raise NotImplementedError

    def fc1_rows(self, context: torch.Tensor, position: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Indices into ``fc1_table`` for each example: (B, n_slots)."""
        raise NotImplementedError

    def forward(self, context: torch.Tensor, position: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """context (B, C) tokens in 0..K, position (B,) flat pixel index, label (B,) class -> logits (B, K).

        In fp32, fc1 is a table lookup. Under bf16 autocast it is the seed's own dense matmul of the
        concatenated features: bf16 matmuls are cheap there and the lookup's backward is not (V3's training
        step: 26 vs 39 ms, measured here).
        """
        if torch.is_autocast_enabled(context.device.type):
            return self._after_fc1(F.linear(self.dense_features(context, position, label), self.fc1.weight))
        return self.forward_with_table(self.fc1_table().contiguous(), context, position, label)

    def dense_features(self, context: torch.Tensor, position: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """The seed's fc1 input (B, fc1.in_features): one-hot (V1, V2) or embedded (V3) context tokens, then the
        row/column embeddings and the class embedding where the model uses them."""
        if hasattr(self, "token_embedding"):
            parts = [self.token_embedding(context).flatten(1)]
        else:
            parts = [F.one_hot(context, self.k + 1).to(self.fc1.weight.dtype).flatten(1)]
        if self.uses_position:
            parts += [self.row_pos_embedding(position // IMAGE_SIZE), self.col_pos_embedding(position % IMAGE_SIZE)]
        if self.conditional:
            parts.append(self.class_embedding(label))
        return torch.cat(parts, dim=1)

    def forward_with_table(self, table: torch.Tensor, context, position, label) -> torch.Tensor:
        """``forward`` with a precomputed ``fc1_table()``; the sampler builds it once per generation."""
        rows = self.fc1_rows(context, position, label)
        return self._after_fc1(F.embedding_bag(rows, table, mode="sum"))

    def _after_fc1(self, h: torch.Tensor) -> torch.Tensor:
        """fc1's pre-activation without bias (..., H) -> logits (..., K)."""
        h = self.dropout(F.relu(h + self.fc1.bias))
        h = self.dropout(F.relu(self.fc2(h)))
        return self.fc_out(h)

    def image_logits(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, 784) tokens, (B,) labels -> (B, 784, K): every pixel's logits from its own context window."""
        b, c = tokens.shape[0], self.config.context
        image = torch.arange(b, device=tokens.device).repeat_interleave(N_PIXELS)  # (B*784,)
        pixel = torch.arange(N_PIXELS, device=tokens.device).repeat(b)  # (B*784,)
        context = gather_context(pad_tokens(tokens, c, self.start_token), image, pixel, c)
        return self.forward_with_table(self.fc1_table().contiguous(), context, pixel, labels[image]).view(b, N_PIXELS, -1)

    def onehot_logits(self, onehot: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``image_logits`` of tokens given as (B, 784, K) one-hot rows: differentiable with respect to them."""
        b, c, k = onehot.shape[0], self.config.context, self.k
        start = F.one_hot(torch.tensor(self.start_token), k + 1).to(onehot).expand(b, c, k + 1)
        padded = torch.cat([start, F.pad(onehot, (0, 1))], 1)  # (B, C+784, K+1)
        windows = padded.unfold(1, c, 1)[:, :N_PIXELS]  # (B, 784, K+1, C): pixel p sees padded p .. p+C-1
        table = self.fc1_table()
        h = torch.einsum("bpkc,ckh->bph", windows, table[: c * (k + 1)].view(c, k + 1, -1))  # (B, 784, H)
        image = torch.arange(b, device=onehot.device).repeat_interleave(N_PIXELS)
        pixel = torch.arange(N_PIXELS, device=onehot.device).repeat(b)
        other = self.fc1_rows(torch.zeros(b * N_PIXELS, c, dtype=torch.long), pixel, labels[image])[:, c:]  # positions, class
        if other.shape[1]:
            h = h + F.embedding_bag(other, table, mode="sum").view(b, N_PIXELS, -1)
        return self._after_fc1(h)

    def training_loss(self, tokens: torch.Tensor, labels: torch.Tensor, batch_size: int, generator) -> Callable:
        """A function drawing ``batch_size`` random (image, pixel) pairs and returning their mean NLL (nats)."""
        c = self.config.context
        padded = pad_tokens(tokens, c, self.start_token)  # (N, C+784), the only copy of the data

        def loss() -> torch.Tensor:
            image = torch.randint(len(tokens), (batch_size,), device=tokens.device, generator=generator)
            pixel = torch.randint(N_PIXELS, (batch_size,), device=tokens.device, generator=generator)
            return F.cross_entropy(self(gather_context(padded, image, pixel, c), pixel, labels[image]), tokens[image, pixel])

        return loss

    @torch.no_grad()
    def begin(self, labels: torch.Tensor, dtype: torch.dtype = torch.float32) -> "MLPState":
        """Sampling state for ``len(labels)`` images: the canvas padded with start tokens, and the weights cast
        once to ``dtype`` (the matmul precision; bf16 halves the table lookups' memory traffic too). int8: fc2 in
        int8, the table and fc_out in fp32."""
        n, c = len(labels), self.config.context
        canvas = pad_tokens(torch.zeros(n, N_PIXELS, dtype=torch.long, device=labels.device), c, self.start_token)
        rest = torch.float32 if dtype == torch.int8 else dtype  # everything but fc2
        return MLPState(
            self.fc1_table().contiguous().to(rest), self.fc1.bias.to(rest),
            SamplingLinear(self.fc2, dtype, n, relu=True), SamplingLinear(self.fc_out, rest, n, relu=False),
            canvas, torch.zeros(n, dtype=torch.long, device=labels.device), labels,
        )

    @torch.no_grad()
    def step(self, state: "MLPState", t: int, canvas: torch.Tensor) -> torch.Tensor:
        """fp32 logits (n, K) for pixel ``t``; ``canvas`` (n, 784) holds the tokens of pixels < t."""
        c = self.config.context
        if t > 0:
            state.padded[:, c + t - 1] = canvas[:, t - 1]
        rows = self.fc1_rows(state.padded[:, t : t + c], state.position.fill_(t), state.labels)
        h = F.relu(F.embedding_bag(rows, state.table, mode="sum") + state.bias)
        return state.fc_out(state.fc2(h)).float()

    def _context_rows(self, context: torch.Tensor, vocab: int) -> torch.Tensor:
        offsets = torch.arange(context.shape[1], device=context.device) * vocab
        return context + offsets  # (B, C)

    def _position_rows(self, position: torch.Tensor, base: int) -> torch.Tensor:
        row, col = position // IMAGE_SIZE, position % IMAGE_SIZE
        return torch.stack([base + row, base + IMAGE_SIZE + col], dim=1)  # (B, 2)


@dataclass
class MLPState:
    """An MLP's sampling state: its layers in the sampling precision, the padded canvas, positions, labels."""

    table: torch.Tensor  # (rows, H) fc1 as a lookup table
    bias: torch.Tensor  # (H,) fc1's bias
    fc2: SamplingLinear  # with its ReLU
    fc_out: SamplingLinear
    padded: torch.Tensor  # (n, C+784): start tokens, then the image so far
    position: torch.Tensor  # (n,)
    labels: torch.Tensor  # (n,)


@register
class OneHotPixelPredictor(PixelMLP):
    """V1 of the seed: the one-hot context window only."""

    name = "v1"
    description = "one-hot context"
    config_class = V1Config
    weight_decay = 1e-2  # the seed builds V1's AdamW without weight_decay, i.e. PyTorch's default

    def __init__(self, config: V1Config | None = None):
        config = config or self.config_class()
        super().__init__(config, config.context * (config.k + 1))

    def fc1_table(self):
        return self.fc1.weight.t()  # one-hot slot c, token t -> column c*(K+1)+t

    def fc1_rows(self, context, position, label):
        return self._context_rows(context, self.config.k + 1)


@register
class OneHotPixelPredictorWithPosition(PixelMLP):
    """V2 of the seed: one-hot context plus learned row and column embeddings."""

    name = "v2"
    description = "one-hot context + row/column embeddings"
    config_class = V2Config
    uses_position = True

    def __init__(self, config: V2Config | None = None):
        config = config or self.config_class()
        onehot_dim = config.context * (config.k + 1)
        super().__init__(config, onehot_dim + 2 * config.pos_dim)
        self.row_pos_embedding = nn.Embedding(IMAGE_SIZE, config.pos_dim)
        self.col_pos_embedding = nn.Embedding(IMAGE_SIZE, config.pos_dim)

    @classmethod
    def table_rows(cls, config: V2Config) -> int:
        return super().table_rows(config) + 2 * IMAGE_SIZE

    def fc1_table(self):
        c = self.config
        w = self.fc1.weight  # (H, C*(K+1) + 2P)
        onehot_dim = c.context * (c.k + 1)
        w_row, w_col = w[:, onehot_dim:].split(c.pos_dim, dim=1)
        return torch.cat(
            [w[:, :onehot_dim].t(), self.row_pos_embedding.weight @ w_row.t(), self.col_pos_embedding.weight @ w_col.t()]
        )

    def fc1_rows(self, context, position, label):
        c = self.config
        base = c.context * (c.k + 1)
        return torch.cat([self._context_rows(context, c.k + 1), self._position_rows(position, base)], dim=1)


@register
class CategoricalPixelPredictor(PixelMLP):
    """V3 of the seed: token embeddings, row/column embeddings and a class embedding."""

    name = "v3"
    description = "token embeddings + positions + class"
    config_class = V3Config
    conditional = True
    uses_position = True

    def __init__(self, config: V3Config | None = None):
        config = config or self.config_class()
        super().__init__(config, config.context * config.token_dim + 2 * config.pos_dim + config.class_dim)
        self.token_embedding = nn.Embedding(config.k + 1, config.token_dim)
        self.row_pos_embedding = nn.Embedding(IMAGE_SIZE, config.pos_dim)
        self.col_pos_embedding = nn.Embedding(IMAGE_SIZE, config.pos_dim)
        self.class_embedding = nn.Embedding(config.num_classes, config.class_dim)

    @classmethod
    def table_rows(cls, config: V3Config) -> int:
        return super().table_rows(config) + 2 * IMAGE_SIZE + config.num_classes

    def fc1_table(self):
        c = self.config
        w = self.fc1.weight  # (H, C*D + 2P + Dc)
        ctx_dim = c.context * c.token_dim
        w_ctx = w[:, :ctx_dim].reshape(c.hidden, c.context, c.token_dim)
        w_row, w_col, w_cls = w[:, ctx_dim:].split([c.pos_dim, c.pos_dim, c.class_dim], dim=1)
        ctx_table = torch.einsum("hcd,td->cth", w_ctx, self.token_embedding.weight).reshape(-1, c.hidden)
        return torch.cat(
            [
                ctx_table,  # (C*(K+1), H)
                self.row_pos_embedding.weight @ w_row.t(),  # (28, H)
                self.col_pos_embedding.weight @ w_col.t(),  # (28, H)
                self.class_embedding.weight @ w_cls.t(),  # (num_classes, H)
            ]
        )

    def fc1_rows(self, context, position, label):
        c = self.config
        base = c.context * (c.k + 1)
        cls = (base + 2 * IMAGE_SIZE + label).unsqueeze(1)
        return torch.cat([self._context_rows(context, c.k + 1), self._position_rows(position, base), cls], dim=1)


def build_model(name: str, seed: int = 0, **overrides) -> PixelModel:
    """A fresh model from the registry, its weights drawn from ``seed`` alone (the process-global random
    state is neither used nor changed); ``overrides`` set config fields (e.g. ``k=4, hidden=64``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    config_class = MODELS[name].config_class
    return seeded(MODELS[name], config_class(**check_settings(config_class, overrides, name)), seed)


def seeded(cls: type[PixelModel], config, seed: int) -> PixelModel:
    """``cls(config)`` with PyTorch's default initialisation drawn from its own generator seeded with ``seed``."""
    with torch.device("meta"):
        model = cls(config)  # shapes only: no memory, no draw from the global random state
    model.to_empty(device="cpu")
    initialise(model, torch.Generator().manual_seed(int(seed)))
    return model


@torch.no_grad()
def initialise(model: nn.Module, generator: torch.Generator) -> None:
    """Fill every parameter as PyTorch's own ``reset_parameters`` would, but from ``generator``."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                bound = 1 / math.sqrt(module.weight[0].numel())
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, generator=generator)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif any(True for _ in module.parameters(recurse=False)):
            raise TypeError(f"no seeded initialisation for {type(module).__name__}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
