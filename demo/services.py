"""What the whole app shares, built once in ``app.build_app`` and handed to the tabs: the request batcher (every
sample and "where it looked" map, ``demo.serving``) and the registry of player values whose maps can be asked for
(``demo.where_it_looked``). No module keeps one of its own, so tests and a second app in one process get fresh ones."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

import pixelar

from . import where_it_looked as looked
from .serving import Batcher


@dataclass(frozen=True)
class Services:
    batcher: Batcher = field(default_factory=Batcher)
    looks: looked.Registry = field(default_factory=looked.Registry)

    def sample(self, model, **kwargs) -> pixelar.Trace:
        """``pixelar.sample(model, **kwargs)``, merged with other requests arriving at the same time."""
        return self.batcher.sample(model, **kwargs)

    def sample_each(self, model, asks: list[dict]) -> list[pixelar.Trace]:
        """Several samples of one model in one merged run."""
        return self.batcher.sample_each(model, asks)

    def register(self, model: nn.Module, panels_tokens: list[np.ndarray], label: int) -> str:
        """Remember what a player value's maps need; its id (``demo.where_it_looked.register``)."""
        return looked.register(self.looks, model, panels_tokens, label)

    def where_it_looked(self, ask) -> dict:
        """The step player's server function (its name is the page's: ``server.where_it_looked``)."""
        return looked.where_it_looked(self.looks, self.batcher, ask)
