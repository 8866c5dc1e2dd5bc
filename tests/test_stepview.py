"""The step-through view's pictures: drawn from a stored trace only, right at every step, on fixed scales."""
import math

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


def test_heat_maps_use_fixed_scales_with_a_colour_bar():
    trace = make_trace()
    picture = stepview.entropy_map(trace, 100, scale=4)
    assert picture.size == (112, 112 + 44)
    assert math.isclose(math.log2(trace.k), 4.0)
    assert stepview.chosen_prob_map(trace, 100, scale=4).size == (112, 156)


def test_entropy_sheet_lays_maps_out_like_the_sample_grid():
    model = pixelar.build_model("v3", hidden=16)
    trace = pixelar.sample(model, 4, seed=1)
    grid = render.sample_grid(trace.images(), columns=2, scale=3)
    sheet = stepview.entropy_sheet(trace, columns=2, scale=3)
    assert sheet.size == (grid.width, grid.height + 44)


def test_render_step_works_on_a_real_sample():
    model = pixelar.build_model("v3", hidden=16)
    trace = pixelar.sample(model, 1, labels=2, seed=1)
    view = stepview.render_step(trace, 400, temperature=1.5, class_name="2")
    assert view.canvas.size == (28 * 16, 29 * 16)
    assert "At T = 1.5" in view.caption


class Event:
    def __init__(self, step, loss, held_out_nll=None):
        self.step, self.loss, self.held_out_nll = step, loss, held_out_nll


def test_loss_curves_separate_training_and_held_out_points():
    events = [Event(10, 3.0), Event(20, 2.5, 2.6), Event(30, None, 2.4), Event(40, float("nan"))]
    curves = stepview.loss_curves(events, start_held_out=4.0)
    assert curves == {
        "step": [0, 10, 20, 20, 30],
        "bits per pixel": [4.0, 3.0, 2.5, 2.6, 2.4],
        "curve": ["held-out", "training", "training", "held-out", "held-out"],
    }
    assert stepview.loss_curves([]) == {"step": [], "bits per pixel": [], "curve": []}


def test_a_click_on_the_bar_chart_maps_to_its_bin():
    left, right = stepview.BAR_MARGINS[:2]
    slot = (520 - left - right) / 16
    assert stepview.bin_at(left + 0.5 * slot, 16) == 0
    assert stepview.bin_at(left + 7.5 * slot, 16) == 7
    assert stepview.bin_at(520 - right - 1, 16) == 15
    assert stepview.bin_at(left - 5, 16) is None and stepview.bin_at(520 - right + 1, 16) is None


def test_what_if_pair_frames_the_forced_pixel_in_both_futures():
    original = make_trace()
    other = make_trace(seed=1)
    picture = stepview.what_if_pair(original, other, 300, scale=10)
    single = stepview.marked_image(original, 300, scale=10)
    assert picture.width > 2 * single.width and picture.height > single.height  # side by side, captions below
    assert colour_count(single, stepview.CURRENT) > 0


def test_completion_sheet_draws_the_cut_line_on_every_image():
    completions = make_trace()
    real = np.zeros((28, 28))
    sheet = stepview.completion_sheet(real, completions, 10, ["real", "1"], scale=8)
    cut_rows = np.flatnonzero((np.asarray(sheet) == np.array(stepview.CUT, dtype=np.uint8)).all(-1).any(1))
    assert len(cut_rows) and cut_rows.min() >= 4 + 10 * 8 - 2  # at the 10th row (after the 4-pixel gutter)
    assert sheet.width > 2 * 28 * 8


def test_surprise_sheet_shares_one_scale():
    from pixelar.experiments import Surprise

    low, high = np.zeros((28, 28)), np.full((28, 28), 100.0)
    sheet = stepview.surprise_sheet(np.zeros((28, 28)), {
        "V1": Surprise(low, 0.0, 0.0), "V3": Surprise(high, 78400.0, 100.0),
    }, scale=4)
    pixels = np.asarray(sheet)
    top = render.heatmap(np.full((1, 1), stepview.SURPRISE_MAX_BITS), 0, stepview.SURPRISE_MAX_BITS, "inferno", 1)
    assert (pixels == np.asarray(top)[0, 0]).all(-1).sum() >= 28 * 28 * 16  # 100 bits is drawn as the top colour


def test_temperature_row_has_one_image_per_temperature():
    traces = [make_trace(temperature=t) for t in (0.3, 1.0, 1.5)]
    row = stepview.temperature_row(traces, scale=8)
    assert row.width >= 3 * 28 * 8 and row.height < 2 * 28 * 8
