"""Every sample the tabs draw goes through ``sample`` here, so that serving (batching concurrent requests,
precision, sharing the cores with training) can change in one place."""
from __future__ import annotations

import inspect

import pixelar

_NUCLEUS = "top_k" in inspect.signature(pixelar.sample).parameters  # a core with top-k and top-p sampling


def sample(model, **kwargs) -> pixelar.Trace:
    """``pixelar.sample(model, **kwargs)``. ``top_k``/``top_p`` of None are left out, so that this also runs on
    a core without them; asking such a core for them is a clear error, not a crash."""
    for key in ("top_k", "top_p"):
        if kwargs.get(key) is None:
            kwargs.pop(key, None)
        elif not _NUCLEUS:
            raise ValueError("top-k and top-p need a newer pixelar core than this one; set Top-k to 0 and Top-p to 1")
    return pixelar.sample(model, **kwargs)
