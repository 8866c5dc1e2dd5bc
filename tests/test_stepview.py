"""The server-side step renderer (GIF, scripts): drawn from a stored trace only, right at every step, on fixed scales."""
import numpy as np
import pytest

import pixelar
from pixelar import render, stepview
from pixelar.sampling import entropy_bits, softmax_at


def make_trace(k: int = 16, context: int = 28, temperature: float = 1.0, seed: int = 0) -> pixelar.Trace:
    """A trace built by hand (no model): random logits, the most likely token chosen at every step."""
    logits = np.random.default_rng(seed).normal(scale=2.0, size=(1, 784, k)).astype(np.float32)
    probs = softmax_at(logits, temperature)
    tokens = probs.argmax(-1)
    return pixelar.Trace(
        tokens=tokens, logits=logits, probs=probs, entropy=entropy_bits(probs).astype(np.float32),
        chosen_prob=np.take_along_axis(probs, tokens[..., None], -1)[..., 0], labels=np.array([3]),
        temperature=temperature, seed=seed, k=k, context=context,
    )


def colour_count(picture, colour) -> int:
    return int((np.asarray(picture) == np.array(colour, dtype=np.uint8)).all(-1).sum())


@pytest.mark.parametrize("step", [0, 1, 27, 28, 29, 300, 783])
def test_window_is_the_context_cells_just_before_the_step(step):
    mask = stepview.window_mask(step, 28)
    assert mask.shape == (29, 28)  # one row of start tokens above the image
    flat = np.flatnonzero(mask)
    assert len(flat) == 28
    assert flat.tolist() == list(range(28 + step - 28, 28 + step))


def test_window_with_a_longer_context_uses_more_padding_rows():
    mask = stepview.window_mask(5, 40)
    assert mask.shape == (30, 28)
    assert np.flatnonzero(mask).tolist() == list(range(56 + 5 - 40, 56 + 5))


@pytest.mark.parametrize("step", [0, 1, 300, 783])
def test_a_model_seeing_the_whole_past_has_no_start_rows_and_the_window_is_every_earlier_pixel(step):
    mask = stepview.window_mask(step, 784)
    assert mask.shape == (28, 28)
    assert np.flatnonzero(mask).tolist() == list(range(step))
    caption = stepview.describe_step(make_trace(context=784), step)
    assert "start token" not in caption and (step == 0 or f"{step} previous pixel" in caption)
    assert stepview.step_canvas(make_trace(context=784), step, scale=4).size == (112, 112)


def test_no_window_once_the_image_is_complete():
    assert not stepview.window_mask(784, 28).any()


def test_canvas_shows_pixels_before_the_step_and_hides_later_ones():
    trace, scale, step = make_trace(), 8, 300
    canvas = np.asarray(stepview.step_canvas(trace, step, scale=scale))
    assert canvas.shape == (29 * scale, 28 * scale, 3)
    image = render.trace_image(trace, 0, 784)
    grey = lambda row, col: round(float(np.clip(image[row, col], 0, 1)) * 255)  # noqa: E731
    centre = lambda row, col: canvas[(row + 1) * scale + scale // 2, col * scale + scale // 2]  # noqa: E731
    row, col = divmod(step - 60, 28)  # well before the step and outside the window
    assert centre(row, col).tolist() == [grey(row, col)] * 3
    row, col = divmod(step + 30, 28)  # after it: not drawn yet
    assert centre(row, col).tolist() == list(render.UNSEEN)


def test_canvas_marks_the_current_pixel_and_outlines_the_window():
    canvas = stepview.step_canvas(make_trace(), 300, scale=16)
    assert colour_count(canvas, stepview.CURRENT) > 0
    assert colour_count(canvas, stepview.WINDOW) > 0
    done = stepview.step_canvas(make_trace(), 784, scale=16)
    assert colour_count(done, stepview.CURRENT) == colour_count(done, stepview.WINDOW) == 0


@pytest.mark.parametrize("step", [-1, 785, 2.5, "3", None])
def test_bad_steps_are_refused_with_a_clear_message(step):
    with pytest.raises(ValueError, match="step must be a whole number from 0 to 784"):
        stepview.render_step(make_trace(), step)


def test_bars_mark_the_chosen_bin_and_draw_a_reshaped_distribution():
    probs = np.full(16, 1 / 16)
    plain = stepview.probability_bars(probs, chosen=5)
    assert plain.size == (520, 320)
    assert colour_count(plain, stepview.CURRENT) > 0
    assert colour_count(plain, stepview.RESHAPED) == 0
    both = stepview.probability_bars(probs, chosen=5, reshaped=np.eye(16)[5])
    assert colour_count(both, stepview.RESHAPED) > 0


def test_render_step_reports_the_trace_numbers_for_the_step():
    trace = make_trace()
    view = stepview.render_step(trace, 300, class_name="3")
    assert view.entropy == pytest.approx(float(trace.entropy[0, 300]))
    assert view.chosen_prob == pytest.approx(float(trace.chosen_prob[0, 300]))
    assert "row 10, column 20" in view.caption
    assert f"bin {trace.tokens[0, 300]} of 16" in view.caption
    assert "28 previous pixels (row 9 col 20 → row 10 col 19)" in view.caption
    assert "the class “3”" in view.caption


def test_render_step_at_another_temperature_reshapes_the_stored_logits():
    trace = make_trace(temperature=1.0)
    view = stepview.render_step(trace, 300, temperature=0.5)
    token = int(trace.tokens[0, 300])
    reshaped = softmax_at(trace.logits[0, 300], 0.5)
    assert f"At T = 0.5: entropy {float(entropy_bits(reshaped)):.2f} bits, p(bin {token}) = {reshaped[token]:.2f}" in view.caption
    assert view.entropy == pytest.approx(float(trace.entropy[0, 300]))  # the sampled numbers do not change


def test_caption_counts_start_tokens_early_on():
    caption = stepview.describe_step(make_trace(), 5, uses_position=False)
    assert "23 start tokens, 5 previous pixels" in caption
    assert "row and column" not in caption and "class" not in caption


def test_the_finished_image_has_no_step_numbers():
    view = stepview.render_step(make_trace(), 784)
    assert view.entropy is None and view.chosen_prob is None
    assert view.caption.startswith("Done")


def test_heat_maps_use_fixed_scales_bright_where_notable():
    """Entropy 0 bits and a certain pick are drawn darkest, entropy log2 K and a 2**-8 pick brightest, whatever
    else the trace holds: the scales are fixed, and on both maps bright means notable."""
    trace, scale = make_trace(), 4
    trace.entropy[0, :] = 2.0
    trace.entropy[0, 0], trace.entropy[0, 1] = 0.0, 4.0  # 4 = log2(16), the top of the entropy scale
    trace.chosen_prob[0, :] = 0.5
    trace.chosen_prob[0, 0], trace.chosen_prob[0, 1] = 1.0, 2.0**-8  # surprise 0 and 8 bits
    magma, inferno = render._colormap("magma"), render._colormap("inferno")
    centre = lambda picture, step: np.asarray(picture)[scale // 2, step * scale + scale // 2]  # noqa: E731
    entropy = stepview.entropy_map(trace, 100, scale=scale)
    assert entropy.size == (28 * scale, 28 * scale + 44)
    assert centre(entropy, 0).tolist() == magma[0].tolist() and centre(entropy, 1).tolist() == magma[255].tolist()
    assert centre(entropy, 2).tolist() == magma[128].tolist()  # 2 bits: the middle
    surprise = stepview.chosen_prob_map(trace, 100, scale=scale)
    assert centre(surprise, 0).tolist() == inferno[0].tolist() and centre(surprise, 1).tolist() == inferno[255].tolist()
    assert centre(surprise, 2).tolist() == inferno[32].tolist()  # p = 1/2: 1 bit of 8
    far = np.asarray(entropy)[20 * scale, 20 * scale]  # after step 100: not drawn yet
    assert far.tolist() == list(render.UNSEEN)


def test_render_step_works_on_a_real_sample():
    model = pixelar.build_model("v3", hidden=16)
    trace = pixelar.sample(model, 1, labels=2, seed=1)
    view = stepview.render_step(trace, 400, temperature=1.5, class_name="2")
    assert view.canvas.size == (28 * 16, 29 * 16)
    assert "At T = 1.5" in view.caption




def test_the_gif_frames_the_current_pixel_and_greys_the_undrawn_ones(tmp_path):
    trace = make_trace()
    trace.tokens[:] = 0  # an all-black drawing: undrawn pixels must still look different
    frame = np.asarray(render.drawing_frame(trace, 300, scale=4))
    row, col = divmod(300, 28)
    assert frame[row * 4, col * 4].tolist() == list(render.CURRENT)  # the frame's edge
    assert frame[27 * 4 + 2, 27 * 4 + 2].tolist() == list(render.UNSEEN)  # not drawn yet
    assert frame[2 * 4 + 2, 2 * 4 + 2].tolist() == [8, 8, 8]  # drawn: bin 0 of 16 is (0 + 0.5) / 16 of white
    done = np.asarray(render.drawing_frame(trace, 784, scale=4))
    assert not (done == np.array(render.CURRENT, dtype=np.uint8)).all(-1).any()
    from PIL import Image

    with Image.open(render.generation_gif(trace, tmp_path / "a.gif", every=28)) as gif:
        gif.seek(5)
        assert (np.asarray(gif.convert("RGB")) == np.array(render.UNSEEN, dtype=np.uint8)).all(-1).any()
