"""A model that draws can also read: MNIST's preprocessing of a drawing, per-pixel scores, Bayes' rule."""
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import pixelar
from helpers import tiny
from pixelar import reading
from pixelar.cli import main
from pixelar.evaluation import pixel_nll_bits

REPO = Path(__file__).resolve().parents[1]
DATA = pixelar.load_dataset("mnist-5k")
TINY = {name: tiny(name) if name != "v4" else pixelar.build_model("v4", channels=8, layers=2).eval() for name in ("v3", "v4")}


def stroke_picture(height=300, width=200, box=(20, 120, 30, 50), ink=0, paper=255) -> np.ndarray:
    """A bar of ink on paper: rows box[0]:box[1], columns box[2]:box[3]."""
    picture = np.full((height, width), paper, np.uint8)
    picture[box[0]:box[1], box[2]:box[3]] = ink
    return picture


def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    grid = digit.reshape(28, 28).astype(float)
    rows, cols = np.indices(grid.shape)
    return (grid * rows).sum() / grid.sum(), (grid * cols).sum() / grid.sum()


def ink_box(digit: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(digit.reshape(28, 28) > 0)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def test_an_off_centre_drawing_ends_up_centred_and_20_pixels_high():
    digit = reading.prepare_drawing(stroke_picture(box=(10, 200, 5, 60)))  # tall, near the top-left corner
    assert digit.shape == (784,) and digit.dtype == np.uint8
    height, width = ink_box(digit)
    assert height == 20 and width < 20
    row, col = centre_of_mass(digit)
    assert abs(row - 13.5) <= 0.5 and abs(col - 13.5) <= 0.5


def test_dark_ink_on_paper_and_light_ink_on_black_are_the_same_digit():
    on_paper = reading.prepare_drawing(stroke_picture(ink=0, paper=255))
    on_black = reading.prepare_drawing(stroke_picture(ink=255, paper=0))
    np.testing.assert_array_equal(on_paper, on_black)
    assert on_paper.max() == 255


def test_a_transparent_sketch_reads_as_ink_on_paper():
    rgba = np.zeros((100, 100, 4), np.uint8)  # a sketchpad: transparent, black strokes
    rgba[20:80, 45:55] = (0, 0, 0, 255)
    np.testing.assert_array_equal(reading.prepare_drawing(rgba), reading.prepare_drawing(stroke_picture(100, 100, (20, 80, 45, 55))))


@pytest.mark.parametrize("picture", [np.full((50, 50), 255, np.uint8), np.zeros((50, 50), np.uint8), np.zeros((30, 30, 4), np.uint8)])
def test_a_blank_drawing_is_refused(picture):
    with pytest.raises(ValueError, match="blank"):
        reading.prepare_drawing(picture)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays(np.uint8, st.tuples(st.integers(1, 120), st.integers(1, 120))))
def test_any_picture_becomes_a_digit_that_fits_the_box_or_a_clear_refusal(picture):
    try:
        digit = reading.prepare_drawing(picture)
    except ValueError as error:
        assert "blank" in str(error)
        return
    assert digit.shape == (784,) and digit.dtype == np.uint8
    assert max(ink_box(digit)) <= 21  # 20, plus a resampling fringe


def test_read_picture_takes_files_and_refuses_what_is_not_a_picture(tmp_path):
    path = tmp_path / "seven.png"
    Image.fromarray(stroke_picture()).save(path)
    assert reading.read_picture(path).shape == (300, 200)
    buffer = io.BytesIO()
    Image.fromarray(stroke_picture()).convert("RGB").save(buffer, "JPEG")
    assert reading.read_picture(buffer.getvalue()).shape == (300, 200)
    for junk in (b"", b"not a picture", b"\x89PNG\r\n\x1a\n" + b"\0" * 40):
        with pytest.raises(ValueError, match="not a picture"):
            reading.read_picture(junk)
    with pytest.raises(ValueError, match="larger than"):
        reading.read_picture(b"\0" * (reading.MAX_PICTURE_BYTES + 1))


@pytest.mark.parametrize("name", ["v3", "v4"])
def test_a_held_out_digits_score_is_the_evaluators_nll_of_its_tokens(name):
    model = TINY[name]
    grey, label = DATA.held_out.images[7].numpy(), int(DATA.held_out.labels[7])
    scored = pixelar.score(model, grey, label)
    expected = pixel_nll_bits(model, DATA.held_out.tokens(model.k)[7:8], torch.tensor([label]))[0]
    np.testing.assert_allclose(scored.nll_map.reshape(784), expected.numpy(), rtol=1e-6)
    assert scored.total_bits == pytest.approx(float(expected.sum()), rel=1e-5)


@pytest.mark.parametrize("name", ["v3", "v4"])
def test_the_posterior_is_bayes_rule_over_each_classs_score(name):
    model = TINY[name]
    images = DATA.held_out.images[::125]  # 4 images
    log_posterior = pixelar.classify(model, images)
    assert log_posterior.shape == (4, 10)
    for i, grey in enumerate(images.numpy()):
        log_likelihood = torch.tensor([-pixelar.score(model, grey, c).total_bits * math.log(2) for c in range(10)])
        torch.testing.assert_close(log_posterior[i], torch.log_softmax(log_likelihood.double(), 0), atol=1e-3, rtol=0)  # fp32 sums of 784 terms


@pytest.mark.parametrize("name", ["v2", "v3", "v4"])
def test_read_is_score_and_classify_in_one_pass(name):
    model = TINY.get(name) or tiny(name)
    grey, label = DATA.held_out.images[3].numpy(), int(DATA.held_out.labels[3])
    verdict = reading.read(model, grey, label)
    scored = pixelar.score(model, grey, label)
    np.testing.assert_allclose(verdict.surprise.nll_map, scored.nll_map, rtol=1e-5, atol=1e-6)
    if model.conditional:
        expected = pixelar.classify(model, grey[None])[0].exp()
        torch.testing.assert_close(torch.tensor(verdict.posterior, dtype=torch.float64), expected, atol=1e-6, rtol=0)
    else:
        assert verdict.posterior is None


def test_bits_per_pixel_of_many_images_is_each_ones_score():
    images = DATA.held_out.images[:4].numpy()
    expected = [pixelar.score(TINY["v3"], grey, 3).bits_per_pixel for grey in images]
    np.testing.assert_allclose(reading.bits_per_pixel(TINY["v3"], images, 3), expected, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 3), st.just(784))))
def test_the_posterior_of_any_image_sums_to_one(images):
    posterior = pixelar.classify(TINY["v3"], images).exp()
    torch.testing.assert_close(posterior.sum(1), torch.ones(len(images), dtype=torch.float64))


def test_an_unconditional_model_cannot_read():
    with pytest.raises(ValueError, match="not class-conditional"):
        pixelar.classify(tiny("v2"), DATA.held_out.images[:1])


@pytest.mark.parametrize("bad", [np.zeros((2, 100), np.uint8), np.zeros((0, 784), np.uint8), np.full((1, 784), 300)])
def test_images_of_the_wrong_shape_or_range_are_refused(bad):
    with pytest.raises(ValueError):
        pixelar.classify(TINY["v3"], bad)


def test_the_shipped_v3_reads_one_held_out_digit_of_each_class():
    model = pixelar.load_checkpoint(REPO / "checkpoints" / "v3.safetensors")
    split = DATA.held_out.subset(10)
    guesses = pixelar.classify(model, split.images).argmax(1)
    assert (guesses == split.labels).sum() >= 8


def test_cli_classify_prints_the_posterior_and_held_out_accuracy(tmp_path, capsys):
    checkpoint = tmp_path / "v3.safetensors"
    pixelar.save_checkpoint(TINY["v3"], checkpoint, dataset="mnist-5k")
    picture = tmp_path / "one.png"
    Image.fromarray(stroke_picture()).save(picture)
    assert main(["classify", "--checkpoint", str(checkpoint), "--image", str(picture)]) == 0
    shares = [float(line.split()[-1].rstrip("%")) for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(shares) == 10 and sum(shares) == pytest.approx(100, abs=0.1)
    assert main(["classify", "--checkpoint", str(checkpoint), "--held-out", "5"]) == 0
    out = capsys.readouterr().out
    assert "(5 images)" in out and "% right" in out
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"nonsense")
    assert main(["classify", "--checkpoint", str(checkpoint), "--image", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a picture" in err
