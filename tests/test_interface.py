"""The one model interface: a model defined in this file alone, registered in one line, goes through everything.

``Bigram`` predicts each pixel from the one before it and the class: about the smallest honest PixelModel.
"""
from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass

import gradio as gr
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pixelar
from pixelar import cli
from pixelar.interface import MODELS, PixelModel, check_settings, register, setting
from pixelar.layers import N_PIXELS


@dataclass
class BigramConfig:
    """Bigram: the previous pixel's token and the class -> K logits."""

    k: int = setting(4, 2, 256, "K (intensity bins)")
    context: int = setting(1, 1, 1, "context length")  # the one previous pixel
    num_classes: int = setting(10, 1, 1000, "number of classes", flag=False)


class Bigram(PixelModel):
    name = "bigram"
    description = "the previous pixel + class"
    config_class = BigramConfig
    conditional = True
    batch_unit = "images"
    default_batch_size = 8

    def __init__(self, config: BigramConfig | None = None):
        super().__init__(config or BigramConfig())
        self.after = nn.Embedding(self.k + 1, self.k)  # logits after each token (or the start token)
        self.by_class = nn.Embedding(self.config.num_classes, self.k)

    @classmethod
    def sampling_bytes(cls, config) -> int:
        return 4 * (config.k + 1) * config.k

    @classmethod
    def train_bytes_per_sample(cls, config) -> int:
        return 16 * N_PIXELS * config.k

    def image_logits(self, tokens, labels):
        previous = F.pad(tokens[:, :-1], (1, 0), value=self.start_token)
        return self.after(previous) + self.by_class(labels)[:, None]

    def onehot_logits(self, onehot, labels):
        start = F.one_hot(torch.tensor(self.start_token), self.k + 1).to(onehot)
        previous = torch.cat([start.expand(len(onehot), 1, -1), F.pad(onehot[:, :-1], (0, 1))], 1)
        return previous @ self.after.weight + self.by_class(labels)[:, None]

    def training_loss(self, tokens, labels, batch_size, generator):
        def loss():
            image = torch.randint(len(tokens), (batch_size,), generator=generator)
            return F.cross_entropy(self.image_logits(tokens[image], labels[image]).reshape(-1, self.k), tokens[image].reshape(-1))
        return loss

    def begin(self, labels, dtype=torch.float32):
        return labels

    def step(self, labels, t, canvas):
        previous = canvas[:, t - 1] if t else torch.full_like(labels, self.start_token)
        return (self.after(previous) + self.by_class(labels)).float()


@pytest.fixture
def bigram():
    register(Bigram)  # the one registering line
    yield Bigram
    del MODELS[Bigram.name]


@pytest.fixture(scope="module")
def digits():
    return pixelar.load_dataset("mnist-5k")


def test_a_model_in_one_file_trains_samples_saves_loads_and_evaluates(bigram, digits, tmp_path):
    model = pixelar.build_model("bigram", seed=0)
    before = pixelar.evaluate(model, digits, 40)
    result = pixelar.train(model, digits, pixelar.TrainConfig(steps=60, batch_size=8, learning_rate=0.05, eval_every=0))
    after = pixelar.evaluate(model, digits, 40)
    assert result.steps == 60 and after < before < 8  # it learned: fewer bits than its random start

    trace = pixelar.sample(model, 3, labels=7, seed=0)  # precision auto: the planner times its one path
    assert trace.tokens.shape == (3, N_PIXELS) and trace.tokens.max() < model.k

    path = pixelar.save_checkpoint(model, tmp_path / "bigram.safetensors", dataset="mnist-5k")
    loaded = pixelar.load_checkpoint(path)  # through every hostile-file check
    assert type(loaded) is Bigram and loaded.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True))
    assert pixelar.evaluate(loaded, digits, 40) == pytest.approx(after, rel=1e-5)
    log_posterior = pixelar.classify(loaded, digits.held_out.images[:5])
    assert log_posterior.shape == (5, 10) and np.allclose(np.exp(np.asarray(log_posterior)).sum(1), 1, atol=1e-4)


def test_its_settings_ranges_guard_building_and_loading(bigram, tmp_path):
    with pytest.raises(ValueError, match="K \\(intensity bins\\) must be a whole number from 2 to 256, got 1"):
        pixelar.build_model("bigram", k=1)
    with pytest.raises(ValueError, match="bigram has no setting hidden"):
        pixelar.build_model("bigram", hidden=8)
    path = pixelar.save_checkpoint(pixelar.build_model("bigram"), tmp_path / "b.safetensors")
    forged = tmp_path / "forged.safetensors"
    forged.write_bytes(_with_config(path.read_bytes(), context=2))
    with pytest.raises(pixelar.CheckpointError, match="context length must be 1, got 2"):
        pixelar.load_checkpoint(forged)


def test_it_appears_in_the_cli_and_the_apps_pickers(bigram, tmp_path, capsys):
    parser = cli.build_parser()
    assert "bigram" in parser.parse_args(["train", "--model", "bigram", "--out", "x.safetensors"]).model
    assert cli.main(["models"]) == 0 and "the previous pixel + class" in capsys.readouterr().out
    pixelar.save_checkpoint(pixelar.build_model("bigram"), tmp_path / "bigram.safetensors", dataset="mnist-5k")

    from app import build_app

    app = build_app(tmp_path, tmp_path / "data", data_dir=tmp_path / "board")
    radios = [b for b in app.blocks.values() if isinstance(b, gr.Radio) and b.elem_id == "train-model"]
    assert ("BIGRAM", "bigram") in [tuple(c) for c in radios[0].choices]
    pickers = [b for b in app.blocks.values() if isinstance(b, gr.Dropdown) and "bigram" in [v for _, v in b.choices]]
    assert len(pickers) >= 3  # Generate, Step through, Explore (and Draw: it is conditional and trained on digits)


def test_every_shipped_model_fills_in_the_interface():
    assert list(MODELS)[:4] == ["v1", "v2", "v3", "v4"]
    for cls in MODELS.values():
        assert issubclass(cls, PixelModel) and cls.name and cls.description
        defaults = {f.name: f.default for f in dataclasses.fields(cls.config_class)}
        assert check_settings(cls.config_class, defaults) == defaults  # every setting states its range
        assert cls.batch_unit in ("pixels", "images") and set(cls.sampling_precisions) <= {"fp32", "bf16", "int8"}
    with pytest.raises(ValueError, match="does not fill in image_logits"):
        register(type("Half", (PixelModel,), {"name": "half", "config_class": BigramConfig}))


def _with_config(file: bytes, **changes) -> bytes:
    """A checkpoint's bytes with its header's config edited (the weights untouched)."""
    size = struct.unpack("<Q", file[:8])[0]
    header = json.loads(file[8 : 8 + size])
    info = json.loads(header["__metadata__"]["pixelar"])
    info["config"].update(changes)
    header["__metadata__"]["pixelar"] = json.dumps(info)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + file[8 + size :]

