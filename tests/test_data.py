import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelar import data
from pixelar.data import DataUnavailable, dequantize, load_dataset, quantize, quantize_grey_levels


def seed_quantize(levels: torch.Tensor, k: int) -> torch.Tensor:
    """The seed's pipeline: ToTensor (uint8 / 255 in float32), then floor(x * (K - 1e-6))."""
    x = levels.float() / 255.0
    return torch.floor(x * (k - 1e-6)).long()


def test_quantisation_is_the_seeds_for_k16():
    levels = torch.arange(256)
    assert torch.equal(quantize_grey_levels(levels, 16), seed_quantize(levels, 16))
    assert quantize_grey_levels(levels, 16).min() == 0 and quantize_grey_levels(levels, 16).max() == 15


@pytest.mark.parametrize("k", [2, 3, 16, 100, 256])
def test_every_level_lands_in_a_bin_below_k(k):
    tokens = quantize_grey_levels(torch.arange(256), k)
    assert tokens.min() == 0 and tokens.max() == k - 1
    assert torch.all(tokens[1:] >= tokens[:-1])  # monotone


def test_dequantize_gives_bin_centres():
    assert torch.allclose(dequantize(torch.tensor([0, 15]), 16), torch.tensor([0.5 / 16, 15.5 / 16]))
    tokens = quantize(torch.rand(1000), 16)
    assert (dequantize(tokens, 16) - (tokens + 0.5) / 16).abs().max() == 0


@pytest.mark.parametrize("k", [0, 1, 257, 2.5])
def test_bad_k_is_refused(k):
    with pytest.raises(ValueError, match="K"):
        quantize(torch.rand(3), k)


def test_mnist_5k_split_is_fixed_and_stratified():
    ds = load_dataset("mnist-5k")
    assert (len(ds.train), len(ds.held_out)) == (4500, 500)
    assert torch.equal(ds.held_out.labels.bincount(), torch.full((10,), 50))
    assert torch.equal(ds.train.labels.bincount(), torch.full((10,), 450))
    assert ds.train.images.dtype == torch.uint8 and ds.train.images.shape == (4500, 784)
    assert ds.train.images.float().mean() > 20  # real digits, not blank
    again = data._load_mnist_5k.__wrapped__()
    assert torch.equal(again.held_out.images, ds.held_out.images)


def test_split_subset_spreads_over_classes():
    sub = load_dataset("mnist-5k").held_out.subset(20)
    assert len(sub) == 20 and len(set(sub.labels.tolist())) == 10


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def test_mnist_reads_files_laid_out_as_torchvision_expects(tmp_path):
    ds5k = load_dataset("mnist-5k")
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, "train", ds5k.train.images[:300].numpy(), ds5k.train.labels[:300].numpy())
    write_idx(raw, "t10k", ds5k.held_out.images[:100].numpy(), ds5k.held_out.labels[:100].numpy())
    ds = load_dataset("mnist", tmp_path)
    assert (len(ds.train), len(ds.held_out)) == (300, 100)
    assert torch.equal(ds.train.images, ds5k.train.images[:300])
    assert torch.equal(ds.held_out.labels, ds5k.held_out.labels[:100])


def test_offline_mnist_says_what_to_do_and_writes_nothing(tmp_path, monkeypatch):
    from torchvision import datasets

    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    root = tmp_path / "data"
    with pytest.raises(DataUnavailable) as error:
        load_dataset("mnist", root)
    message = str(error.value)
    assert "mnist" in message and str(root / "MNIST") in message and "mnist-5k" in message
    assert not root.exists()


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="mnist-5k"):
        load_dataset("cifar")


@pytest.mark.skipif(not data._has_gz_files(data.DEBIAN_FASHION_DIR), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_comes_from_the_debian_package_without_download(tmp_path):
    ds = load_dataset("fashion", tmp_path)
    assert (len(ds.train), len(ds.held_out)) == (60000, 10000)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    with gzip.open(data.DEBIAN_FASHION_DIR / "t10k-labels-idx1-ubyte.gz") as f:
        assert ds.held_out.labels[:50].tolist() == list(f.read()[8:58])
    assert "Debian" in ds.source

