"""Small real things for tests: tiny models, a trace built by hand, and the full-image logits of a model, computed
the plain way."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import pixelar
from pixelar.context import gather_context, pad_tokens
from pixelar.models import N_PIXELS, build_model
from pixelar.sampling import entropy_bits, softmax_at


def tiny(name: str, **overrides):
    return build_model(name, **{"hidden": 32, **overrides}).eval()


def make_trace(k: int = 16, context: int = 28, temperature: float = 1.0, seed: int = 0) -> pixelar.Trace:
    """A trace built by hand (no model): random logits, the most likely token chosen at every step."""
    logits = np.random.default_rng(seed).normal(scale=2.0, size=(1, 784, k)).astype(np.float32)
    probs = softmax_at(logits, temperature)
    tokens = probs.argmax(-1)
    return pixelar.Trace(
        tokens=tokens, logits=logits, probs=probs, entropy=entropy_bits(probs).astype(np.float32),
        chosen_prob=np.take_along_axis(probs, tokens[..., None], -1)[..., 0], labels=np.array([3]),
        temperature=temperature, seed=seed, k=k, context=context,
    )


def seed_reference_logits(model, context, position, label) -> torch.Tensor:
    """The seed's forward pass, written as the seed writes it: one-hot or embedded context, concatenated
    with row/column/class embeddings, through fc1 as a matmul (eval mode)."""
    c = model.config
    if model.name == "v3":
        features = [model.token_embedding(context).flatten(1)]
    else:
        features = [F.one_hot(context, c.k + 1).float().flatten(1)]
    if model.uses_position:
        features += [model.row_pos_embedding(position // 28), model.col_pos_embedding(position % 28)]
    if model.conditional:
        features.append(model.class_embedding(label))
    h = F.relu(model.fc1(torch.cat(features, dim=1)))
    h = F.relu(model.fc2(h))
    return model.fc_out(h)


@torch.no_grad()
def image_logits(model, tokens: torch.Tensor, label: int = 0) -> torch.Tensor:
    """Logits for every pixel of one image (784,) given its own earlier pixels: (784, K)."""
    padded = pad_tokens(tokens.view(1, N_PIXELS), model.config.context, model.start_token)
    pixel = torch.arange(N_PIXELS)
    image = torch.zeros(N_PIXELS, dtype=torch.long)
    context = gather_context(padded, image, pixel, model.config.context)
    return model(context, pixel, torch.full((N_PIXELS,), label))
