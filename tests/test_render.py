import math

import numpy as np
from PIL import Image

from pixelar import render, sample
from helpers import make_trace, tiny


def test_grid_is_nearest_neighbour_and_sized():
    images = np.zeros((5, 28, 28))
    images[:, 0, 0] = 1.0
    grid = render.sample_grid(images, columns=5, scale=4)
    assert grid.size == (5 * (28 * 4 + 4) + 4, 28 * 4 + 8)
    pixels = np.asarray(grid)
    assert (pixels[4:8, 4:8] == 255).all() and (pixels[4:8, 8:12] == 0).all()


def test_heatmap_uses_a_fixed_scale_and_marks_unseen():
    values = np.full((28, 28), np.nan)
    values[0, 0], values[0, 1], values[0, 2] = 0.0, 4.0, 99.0
    pixels = np.asarray(render.heatmap(values, 0.0, 4.0, "magma", scale=1))
    table = render._colormap("magma")
    assert (pixels[0, 0] == table[0]).all() and (pixels[0, 1] == table[255]).all() and (pixels[0, 2] == table[255]).all()
    assert (pixels[5, 5] == render.UNSEEN).all()


def test_trace_views_hide_the_future():
    trace = sample(tiny("v3"), 1, seed=0)
    assert np.isnan(render.trace_map(trace, "entropy", 0, 300).reshape(-1)[300:]).all()
    assert (render.trace_image(trace, 0, 300).reshape(-1)[300:] == 0).all()
    ent = render.entropy_heatmap(trace, 0, 784, scale=2)
    assert ent.size == (56, 56)
    assert math.isclose(render.trace_map(trace, "entropy").max(), trace.entropy.max(), rel_tol=1e-6)


def test_gif_animates_the_generation(tmp_path):
    trace = sample(tiny("v1"), 1, seed=0)
    gif = Image.open(render.generation_gif(trace, tmp_path / "a.gif", every=28))
    assert gif.n_frames == 29
    gif.seek(gif.n_frames - 1)
    assert np.asarray(gif.convert("L")).shape == (224, 224)


def test_tile_captions_shrink_to_fit_their_picture():
    pictures = [render.grey_image(np.zeros((28, 28)), 4)] * 2
    long = render.tile(pictures, captions=["a very long caption for a small picture", "x"])
    short = render.tile(pictures, captions=["ab", "x"])
    assert long.size[1] < short.size[1]  # a smaller font, so a lower caption strip
    assert long.size[0] == short.size[0]


def test_heat_maps_use_fixed_scales_bright_where_notable():
    """Entropy 0 bits is drawn darkest and log2 K brightest, whatever else the trace holds; the colour bar under a
    map spans the same fixed scale."""
    trace, scale = make_trace(), 4
    trace.entropy[0, :] = 2.0
    trace.entropy[0, 0], trace.entropy[0, 1] = 0.0, 4.0  # 4 = log2(16), the top of the entropy scale
    magma = render._colormap("magma")
    centre = lambda picture, step: np.asarray(picture)[scale // 2, step * scale + scale // 2]  # noqa: E731
    entropy = render.entropy_heatmap(trace, 0, 100, scale=scale)
    assert centre(entropy, 0).tolist() == magma[0].tolist() and centre(entropy, 1).tolist() == magma[255].tolist()
    assert centre(entropy, 2).tolist() == magma[128].tolist()  # 2 bits: the middle
    assert np.asarray(entropy)[20 * scale, 20 * scale].tolist() == list(render.UNSEEN)  # after step 100
    barred = render.with_color_bar(entropy, 0.0, 4.0, "magma", "entropy, bits")
    assert barred.size == (28 * scale, 28 * scale + 44)
    strip = np.asarray(barred)[28 * scale + 4 + 7]  # the colour bar's middle row, darkest to brightest
    assert strip[0].tolist() == magma[0].tolist() and strip[-1].tolist() == magma[255].tolist()


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
    with Image.open(render.generation_gif(trace, tmp_path / "a.gif", every=28)) as gif:
        gif.seek(5)
        assert (np.asarray(gif.convert("RGB")) == np.array(render.UNSEEN, dtype=np.uint8)).all(-1).any()


def test_one_set_of_colours_for_the_pictures_and_the_player():
    """The GIF's frame, the grid's gutter and the player's canvas all take their colours from ``COLOURS``; the page
    gets them as CSS colours (the player's values before they had one source)."""
    assert render.CURRENT == render.COLOURS["chosen"] and render.UNSEEN == render.COLOURS["unseen"]
    assert render.GUTTER == render.COLOURS["gutter"]
    assert render.css_colours() == {
        "bg": "#1c1c24", "text": "#ebebf0", "dim": "#9a9aae", "grid": "#464655", "bar": "#96a0b9", "chosen": "#ff961e",
        "window": "#28d2ff", "reshaped": "#ff5ac8", "start": "#2d4178", "gutter": "#282830", "unseen": "#464650",
        "looked": "#7cf03c",
    }
