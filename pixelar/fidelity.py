"""Class fidelity: how often a conditional model's samples of class d are read as d by a small classifier.

The classifier is a small CNN trained here on the data set's training split, on images quantised to 16 bins
and shown as bin centres, like the samples it will judge. Its held-out accuracy is part of its metadata.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import CheckpointError, stored_digest, load_weights, read_header, save_atomically
from .data import Dataset, dequantize
from .interface import PixelModel
from .models import IMAGE_SIZE, seeded
from .sampling import sample

CLASSIFIER_K = 16
CLASSIFIER_FORMAT = "pixelar-classifier"
FIDELITY_TEMPERATURES = (0.5, 0.8, 1.0, 1.2)


class DigitClassifier(nn.Module):
    """Two conv blocks and a small MLP: (B, 28, 28) images in [0, 1] -> (B, 10) logits."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self.metadata: dict = {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(images.unsqueeze(1))), 2)  # (B, 16, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 32, 7, 7)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))

    @torch.no_grad()
    def predict(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        self.eval()
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
        return torch.cat([self(chunk).argmax(1) for chunk in x.split(512)]).numpy()


def _binned_images(split) -> torch.Tensor:
    return dequantize(split.tokens(CLASSIFIER_K).float(), CLASSIFIER_K).view(-1, IMAGE_SIZE, IMAGE_SIZE)


def _shift(images: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translations of up to ``max_shift`` pixels (zero fill): cheap augmentation for 4,500 images."""
    padded = F.pad(images, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2,), generator=generator).tolist()
    return padded[:, dy : dy + IMAGE_SIZE, dx : dx + IMAGE_SIZE]


def train_classifier(dataset: Dataset, epochs: int = 12, seed: int = 0) -> DigitClassifier:
    """Train the judge on ``dataset.train``; its held-out accuracy goes in ``metadata``."""
    generator = torch.Generator().manual_seed(seed)
    model = seeded(DigitClassifier, len(dataset.class_names), seed)
    images, labels = _binned_images(dataset.train), dataset.train.labels
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * -(-len(labels) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(128):
            loss = F.cross_entropy(model(_shift(images[batch], generator)), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    held_out = model.predict(_binned_images(dataset.held_out))
    accuracy = float((held_out == dataset.held_out.labels.numpy()).mean())
    model.metadata = {"dataset": dataset.name, "held_out_accuracy": round(accuracy, 4), "held_out_images": len(held_out), "epochs": epochs, "seed": seed}
    return model.eval()


def save_classifier(model: DigitClassifier, path: str | Path) -> Path:
    path = Path(path)
    save_atomically(model.state_dict(), path, {"format": CLASSIFIER_FORMAT, "pixelar": json.dumps(model.metadata)})
    return path


def is_classifier_file(path: str | Path) -> bool:
    """Whether ``path`` is a classifier saved by ``save_classifier`` (it may sit beside the models)."""
    try:
        return read_header(path)[1].get("format") == CLASSIFIER_FORMAT
    except CheckpointError:
        return False


def load_classifier(path: str | Path) -> DigitClassifier:
    """A judge saved by ``save_classifier``, checked as strictly as a model checkpoint."""
    header, meta = read_header(path)
    if meta.get("format") != CLASSIFIER_FORMAT:
        raise CheckpointError(f"{path} is not a pixelar classifier")
    try:
        metadata = json.loads(meta["pixelar"])
        num_classes = header["fc2.weight"]["shape"][0]
    except (KeyError, IndexError, TypeError, ValueError, RecursionError):
        raise CheckpointError(f"{path} is not a readable classifier") from None
    if not isinstance(metadata, dict) or not isinstance(num_classes, int) or not 1 <= num_classes <= 1000:
        raise CheckpointError(f"{path} is not a readable classifier")
    model = load_weights(path, header, DigitClassifier, num_classes, stored_digest(path, meta))
    model.metadata = metadata
    return model.eval()


@dataclass
class Fidelity:
    """Share of samples read as the class they were asked for, by temperature: overall and per class."""

    temperatures: tuple[float, ...]
    overall: dict[float, float]
    per_class: dict[float, list[float]]
    samples_per_class: int
    classifier_accuracy: float

    def table(self, class_names) -> str:
        head = f"{'T':>5} {'all':>6} " + " ".join(f"{str(n)[:5]:>5}" for n in class_names)
        rows = [f"{t:>5} {self.overall[t]:>6.1%} " + " ".join(f"{a:>5.0%}" for a in self.per_class[t]) for t in self.temperatures]
        return "\n".join([head, *rows])


def class_fidelity(
    model: PixelModel, classifier: DigitClassifier, temperatures=FIDELITY_TEMPERATURES, per_class: int = 50, seed: int = 0,
    precision: str = "fp32",
) -> Fidelity:
    """Sample ``per_class`` images of every class at each temperature and score them with ``classifier``."""
    if not model.conditional:
        raise ValueError(f"{model.name} is not class-conditional: class fidelity needs a model like v3")
    num_classes = model.config.num_classes
    labels = np.repeat(np.arange(num_classes), per_class)
    overall, per = {}, {}
    for t in temperatures:
        trace = sample(model, len(labels), labels=labels, temperature=t, seed=seed, precision=precision)
        correct = classifier.predict(trace.images()) == labels
        overall[t] = float(correct.mean())
        per[t] = [float(correct[labels == c].mean()) for c in range(num_classes)]
    return Fidelity(tuple(temperatures), overall, per, per_class, classifier.metadata.get("held_out_accuracy", float("nan")))
