"""Where a model looked: how much each earlier pixel moves the log-probability of the token chosen at a step."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .inputs import whole_number, whole_numbers
from .layers import IMAGE_SIZE, N_PIXELS


def influence(model: nn.Module, tokens, label: int, step: int) -> np.ndarray:
    """(28, 28) map: ``|d log p(tokens[step]) / d one-hot(pixel)|`` summed over the K bins, for every pixel.

    One method for every model: the gradient flows through ``model.onehot_logits``. Pixels at and after ``step``
    are zero by causality; for V1-V3, so is everything outside the context window. Costs one forward and one
    backward pass over one image.
    """
    tokens = torch.from_numpy(whole_numbers(tokens, "tokens", 0, model.k - 1))
    if tokens.numel() != N_PIXELS:
        raise ValueError(f"tokens must be {N_PIXELS} whole numbers, got {tokens.numel()}")
    tokens = tokens.reshape(N_PIXELS)
    step = whole_number(step, "step", 0, N_PIXELS - 1)
    label = whole_number(label, "label", 0, getattr(model.config, "num_classes", 10) - 1) if model.conditional else 0
    model.eval()
    device = next(model.parameters()).device
    onehot = F.one_hot(tokens, model.k).float().unsqueeze(0).to(device).requires_grad_()  # (1, 784, K)
    label_t = torch.tensor([label], device=device)
    with torch.enable_grad():
        logits = model.onehot_logits(onehot, label_t)[0, step]  # (K,)
        (grad,) = torch.autograd.grad(torch.log_softmax(logits, -1)[tokens[step]], onehot)
    return grad[0].abs().sum(-1).view(IMAGE_SIZE, IMAGE_SIZE).cpu().numpy()
