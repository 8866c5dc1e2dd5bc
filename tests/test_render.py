import math

import numpy as np
from PIL import Image

from pixelar import render, sample
from helpers import tiny


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
