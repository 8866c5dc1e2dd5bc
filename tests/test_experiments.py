import numpy as np
import pytest

from pixelar import build_model, load_dataset
from pixelar.experiments import complete, random_index_of_class, real_image, surprise, temperature_strip, what_if
from pixelar.sampling import sample
from helpers import tiny

CONDITIONAL = ["v3", "v4"]


def small(kind: str):
    """A small real model: the MLP at hidden 32, or V4 with 8 channels and 3 blocks."""
    return build_model("v4", channels=8, layers=3, head=16).eval() if kind == "v4" else tiny(kind)


@pytest.fixture(scope="module")
def real():
    held_out = load_dataset("mnist-5k").held_out
    return held_out.images[0].numpy(), int(held_out.labels[0])


@pytest.mark.parametrize("kind", CONDITIONAL)
def test_completion_keeps_the_rows_and_finishes_the_rest(real, kind):
    grey, label = real
    trace = complete(small(kind), grey, keep_rows=10, n=3, label=8, seed=0)
    kept = trace.tokens[:, : 10 * 28]
    assert (kept == kept[0]).all() and kept[0].max() > 0  # the real top rows, in every completion
    assert (trace.labels == 8).all()
    assert not np.array_equal(trace.tokens[0, 280:], trace.tokens[1, 280:])
    with pytest.raises(ValueError, match="rows"):
        complete(tiny("v1"), grey, keep_rows=29)


def test_surprise_maps_sum_to_the_image_nll(real):
    grey, label = real
    maps = surprise({"v1": tiny("v1"), "v3": tiny("v3"), "v4": small("v4")}, grey, label)
    for s in maps.values():
        assert s.nll_map.shape == (28, 28) and (s.nll_map >= 0).all()
        assert np.isclose(s.nll_map.sum(), s.total_bits, rtol=1e-5) and np.isclose(s.total_bits / 784, s.bits_per_pixel)
    with pytest.raises(ValueError, match="grey levels"):
        surprise({"v1": tiny("v1")}, np.zeros(10))


@pytest.mark.parametrize("kind", CONDITIONAL)
def test_what_if_changes_only_the_future(kind):
    model = small(kind)
    base = sample(model, 1, labels=4, temperature=0.8, seed=2)
    other = what_if(model, base, 300, (int(base.tokens[0, 300]) + 5) % 16)
    assert np.array_equal(other.tokens[:, :300], base.tokens[:, :300])
    assert other.tokens[0, 300] != base.tokens[0, 300]
    assert other.seed == base.seed and other.temperature == base.temperature


@pytest.mark.parametrize("kind", CONDITIONAL)
def test_temperature_strip_uses_one_seed(kind):
    strip = temperature_strip(small(kind), (0.3, 1.0, 1.5), label=2)
    assert [t.temperature for t in strip] == [0.3, 1.0, 1.5]
    assert len({t.seed for t in strip}) == 1
    assert strip[0].entropy.mean() < strip[2].entropy.mean()


def test_real_image_and_random_index_of_class():
    held_out = load_dataset("mnist-5k").held_out
    grey, label = real_image(held_out, 3)
    assert grey.dtype == np.uint8 and grey.shape == (784,) and label == int(held_out.labels[3])
    for bad in (-1, len(held_out), 2.5, "x", True):
        with pytest.raises(ValueError, match="image number"):
            real_image(held_out, bad)
    index = random_index_of_class(held_out, 7, seed=1)
    assert int(held_out.labels[index]) == 7 and index == random_index_of_class(held_out, 7, seed=1)
    with pytest.raises(ValueError, match="no image of class"):
        random_index_of_class(held_out, 12)
