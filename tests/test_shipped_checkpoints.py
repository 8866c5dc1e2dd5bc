"""The pretrained models in checkpoints/: they load, their stored NLL is reproducible, they sample digits."""
from pathlib import Path

import numpy as np
import pytest

from pixelar import evaluate, load_checkpoint, load_dataset, sample
from pixelar.fidelity import load_classifier

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
NLL_TOLERANCE = 0.05  # bits/pixel: 100 of the 500 held-out images, evenly spread, vs the stored full-split figure


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist-5k")


@pytest.mark.parametrize("name, kind", [("v1", "v1"), ("v2", "v2"), ("v3", "v3"), ("v4", "v4"), ("v3-context56", "v3")])
def test_shipped_model_loads_and_its_nll_reproduces(name, kind, mnist5k):
    path = CHECKPOINTS / f"{name}.safetensors"
    assert path.stat().st_size < 10 * 2**20
    model = load_checkpoint(path)
    meta = model.metadata
    assert model.name == kind and meta["dataset"] == "mnist-5k" and meta["held_out_images"] == 500
    assert meta["steps"] > 0 and meta["samples_seen"] == meta["steps"] * meta["batch_size"] and meta["train_seconds"] > 0
    nll = evaluate(model, mnist5k.held_out.subset(100))
    assert abs(nll - meta["held_out_nll"]) < NLL_TOLERANCE, (nll, meta["held_out_nll"])
    trace = sample(model, 4, labels=[1, 3, 5, 7], seed=0)
    assert trace.tokens.shape == (4, 784) and 0 <= trace.tokens.min() and trace.tokens.max() < 16
    assert 0 < trace.images().mean() < 0.5  # mostly dark background with some ink


def test_the_seeds_story_holds_in_numbers(mnist5k):
    """Measured here, on the same 100 held-out images: each model beats the one before it."""
    images = mnist5k.held_out.subset(100)
    nll = {name: evaluate(load_checkpoint(CHECKPOINTS / f"{name}.safetensors"), images) for name in ("v1", "v2", "v3")}
    assert nll["v1"] > nll["v2"] > nll["v3"], nll


def test_two_rows_of_context_beat_the_seeds_one_row(mnist5k):
    """The wider-context V3 is the seed's V3 with context 56, and measured here it needs fewer bits."""
    images = mnist5k.held_out.subset(100)
    v3, wide = (load_checkpoint(CHECKPOINTS / f"{name}.safetensors") for name in ("v3", "v3-context56"))
    assert wide.config.context == 56 and (v3.config.context, v3.config.hidden) == (28, wide.config.hidden)
    assert evaluate(wide, images) < evaluate(v3, images) - 0.01


def test_v3_draws_the_digit_it_is_asked_for():
    judge = load_classifier(CHECKPOINTS / "classifier-mnist-5k.safetensors")
    assert judge.metadata["held_out_accuracy"] > 0.95
    trace = sample(load_checkpoint(CHECKPOINTS / "v3.safetensors"), 20, labels=np.arange(20) % 10, seed=0)
    assert (judge.predict(trace.images()) == trace.labels).mean() >= 0.7


def test_v4_sees_the_whole_past_and_beats_v3_by_a_tenth():
    v3, v4 = (load_checkpoint(CHECKPOINTS / f"{name}.safetensors").metadata for name in ("v3", "v4"))
    assert not v4.get("partial") and v4["held_out_nll"] <= 0.9 * v3["held_out_nll"]


def test_v4_draws_the_digit_it_is_asked_for():
    judge = load_classifier(CHECKPOINTS / "classifier-mnist-5k.safetensors")
    trace = sample(load_checkpoint(CHECKPOINTS / "v4.safetensors"), 20, labels=np.arange(20) % 10, seed=0)
    assert (judge.predict(trace.images()) == trace.labels).mean() >= 0.85
