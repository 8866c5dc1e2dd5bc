"""Every sample the tabs draw goes through ``sample`` here, so that serving (batching concurrent requests,
precision, sharing the cores with training) can change in one place."""
from __future__ import annotations

import pixelar


def sample(model, **kwargs) -> pixelar.Trace:
    """``pixelar.sample(model, **kwargs)``; ``top_k``/``top_p`` are passed on only when set (older cores
    have no such arguments)."""
    for key in ("top_k", "top_p"):
        if kwargs.get(key) is None:
            kwargs.pop(key, None)
    return pixelar.sample(model, **kwargs)
