"""Data sets for the Train tab: each loaded once per server, falling back to mnist-5k (with a notice) when a
download is impossible."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import pixelar

log = logging.getLogger(__name__)

FALLBACK = "mnist-5k"
DATASET_CHOICES = [
    ("MNIST, 5,000 digits (works offline)", "mnist-5k"),
    ("MNIST, 70,000 digits (downloads 11 MB the first time)", "mnist"),
    ("Fashion-MNIST, 70,000 clothes pictures (downloads 30 MB the first time)", "fashion"),
]

DATASET_NAMES = tuple(name for _, name in DATASET_CHOICES)


class DataSets:
    """Loads data sets by name under ``root`` and keeps them; one load at a time (a download is not repeated)."""

    def __init__(self, root: str | Path = "data"):
        self.root = Path(root)
        self._loaded: dict[str, pixelar.Dataset] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> tuple[pixelar.Dataset, str | None]:
        """The data set ``name``, or mnist-5k and a one-line notice saying why ``name`` could not be had."""
        if name not in DATASET_NAMES:
            raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASET_NAMES)}")
        with self._lock:
            try:
                return self._get(name), None
            except pixelar.DataUnavailable as error:
                if name == FALLBACK:
                    raise
                log.warning("%s", error)
                notice = f"**{name}** could not be loaded or downloaded here, so this uses **{FALLBACK}** instead."
                return self._get(FALLBACK), notice

    def _get(self, name: str) -> pixelar.Dataset:
        if name not in self._loaded:
            self._loaded[name] = pixelar.load_dataset(name, self.root)
        return self._loaded[name]
