"""Context windows gathered on the fly from a padded token tensor: the one place they are built."""
from __future__ import annotations

import torch


def pad_tokens(tokens: torch.Tensor, context: int, start_token: int) -> torch.Tensor:
    """(N, 784) tokens -> (N, context + 784): ``context`` start tokens, then the image in raster order."""
    pad = torch.full((tokens.shape[0], context), start_token, dtype=tokens.dtype, device=tokens.device)
    return torch.cat([pad, tokens], dim=1)


def gather_context(padded: torch.Tensor, image: torch.Tensor, pixel: torch.Tensor, context: int) -> torch.Tensor:
    """Tokens ``pixel - context .. pixel - 1`` of each chosen image (start tokens before pixel 0): (B, context).

    ``padded`` is from ``pad_tokens``; ``image`` and ``pixel`` are (B,) indices. A view-free gather: no copy
    of the data set, no loop over pixels.
    """
    offsets = torch.arange(context, device=padded.device)
    return padded[image.unsqueeze(1), pixel.unsqueeze(1) + offsets]  # (B, C)
