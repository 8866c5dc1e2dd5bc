"""The app's own pictures (demo/pictures.py): composites on fixed scales, and the training-loss figure."""
import numpy as np
import pytest

import pixelar
from demo import pictures
from pixelar import render
from pixelar.experiments import Surprise
from helpers import make_trace


class Event:
    def __init__(self, step, loss, held_out_nll=None):
        self.step, self.loss, self.held_out_nll = step, loss, held_out_nll


def test_loss_curves_separate_training_and_held_out_points():
    events = [Event(10, 3.0), Event(20, 2.5, 2.6), Event(30, None, 2.4), Event(40, float("nan"))]
    curves = pictures.loss_curves(events, start_held_out=4.0)
    assert curves == {
        "step": [0, 10, 20, 20, 30],
        "bits per pixel": [4.0, 3.0, 2.5, 2.6, 2.4],
        "curve": ["held-out", "training", "training", "held-out", "held-out"],
    }
    assert pictures.loss_curves([]) == {"step": [], "bits per pixel": [], "curve": []}


def test_the_loss_figure_shows_learning_on_a_log_axis_with_held_out_as_dots():
    events = [Event(s, 4.0 * 0.9 ** (s / 10) + 0.5, 0.9 if s % 50 == 0 else None) for s in range(10, 301, 10)]
    figure = pictures.loss_figure(pictures.loss_curves(events, 4.1), total_steps=300)
    axes = figure.axes[0]
    assert axes.get_yscale() == "log"
    low, high = axes.get_ylim()
    assert low < 0.9 and high <= 4.5  # the held-out points near 0.9 are well inside the view
    training, held_out = [line for line in axes.get_lines() if line.get_label() in ("training", "held-out")]
    assert training.get_linestyle() == "-" and held_out.get_linestyle() == "None" and held_out.get_marker() == "o"
    assert list(held_out.get_xdata()) == [0, 50, 100, 150, 200, 250, 300]


@pytest.mark.parametrize("k, blind", [(16, 4.0), (4, 2.0), (256, 8.0), (2, 1.0)])
def test_the_loss_figure_draws_the_blind_guess_at_log2_k(k, blind):
    """Issue 20.1: the blind guess is log₂ K bits for the run's K, not 4 for every K; it is a dashed line in view."""
    events = [Event(s, blind * 0.95 * 0.9 ** (s / 10) + 0.05) for s in range(10, 301, 10)]
    axes = pictures.loss_figure(pictures.loss_curves(events, blind * 1.02), total_steps=300, k=k).axes[0]
    [line] = [line for line in axes.get_lines() if line.get_label() == "blind guess (log₂ K)"]
    assert line.get_linestyle() == "--" and set(line.get_ydata()) == {blind}
    low, high = axes.get_ylim()
    assert low < blind < high  # in view, with the untrained model's loss just above it
    late = pictures.loss_figure(pictures.loss_curves([Event(s, blind / 8) for s in (10, 20)]), 20, k=k).axes[0]
    assert late.get_ylim()[0] < blind / 8 and late.get_ylim()[1] > blind  # long after the fall: still in view
    assert "blind guess (log₂ K)" in [text.get_text() for text in axes.get_legend().get_texts()]


def test_entropy_sheet_lays_maps_out_like_the_grid():
    trace = pixelar.sample(pixelar.build_model("v3", hidden=16), 4, seed=1)
    grid = pictures.grid(trace)
    sheet = pictures.entropy_sheet(trace)
    assert sheet.size == (grid.width, grid.height + 29 + max(15, grid.width // 40))


def test_completion_sheet_draws_the_cut_line_on_every_image():
    sheet = pictures.completion_sheet(np.zeros((28, 28)), make_trace(), 10, ["real", "1"], scale=8)
    cut_rows = np.flatnonzero((np.asarray(sheet) == np.array(pictures.CUT, dtype=np.uint8)).all(-1).any(1))
    assert len(cut_rows) and cut_rows.min() >= 4 + 10 * 8 - 2  # at the 10th row (after the 4-pixel gutter)
    assert sheet.width > 2 * 28 * 8


def test_surprise_sheet_shares_one_bright_is_notable_scale():
    low, high = np.zeros((28, 28)), np.full((28, 28), 100.0)
    sheet = pictures.surprise_sheet(np.zeros((28, 28)), {
        "V1": Surprise(low, 0.0, 0.0, 16), "V3": Surprise(high, 78400.0, 100.0, 16),
    }, scale=4)
    pixels = np.asarray(sheet)
    inferno = render._colormap("inferno")
    assert (pixels == inferno[255]).all(-1).sum() >= 28 * 28 * 16  # 100 bits is drawn as the brightest colour
    assert (pixels == inferno[0]).all(-1).sum() >= 28 * 28 * 16  # no surprise: the darkest


def test_compare_sheet_and_temperature_row_put_one_picture_per_model_or_temperature():
    traces = {kind: make_trace(seed=i) for i, kind in enumerate(["v1", "v2", "v3"])}
    sheet = pictures.compare_sheet(traces)
    assert sheet.width > sheet.height
    row = pictures.temperature_row([make_trace(temperature=t) for t in (0.7, 1.0, 1.3)], scale=8)
    assert row.width >= 3 * 28 * 8 and row.height < 2 * 28 * 8
