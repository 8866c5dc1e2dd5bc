import math

import numpy as np
import pytest
import torch

from hypothesis import given, settings, strategies as st

from pixelar import build_model, layers, planner
from pixelar.sampling import Request, _inverse_cdf, entropy_bits, sample, sample_many, softmax_at
from helpers import image_logits, tiny


@pytest.fixture(scope="module")
def v3():
    return tiny("v3")


def test_trace_shapes_and_ranges(v3):
    trace = sample(v3, 6, labels=[0, 1, 2, 3, 4, 5], temperature=1.0, seed=0)
    assert trace.tokens.shape == (6, 784) and trace.tokens.dtype == np.int64
    assert trace.probs.shape == trace.logits.shape == (6, 784, 16)
    assert trace.entropy.shape == trace.chosen_prob.shape == (6, 784)
    assert trace.tokens.min() >= 0 and trace.tokens.max() < 16
    assert np.allclose(trace.probs.sum(-1), 1, atol=1e-5)
    assert trace.entropy.min() >= -1e-6 and trace.entropy.max() <= math.log2(16) + 1e-5
    chosen = np.take_along_axis(trace.probs, trace.tokens[..., None], -1)[..., 0]
    assert np.allclose(trace.chosen_prob, chosen)
    assert np.allclose(trace.entropy, entropy_bits(trace.probs), atol=1e-4)
    assert trace.images().shape == (6, 28, 28) and 0 < trace.images().min() and trace.images().max() < 1
    assert trace.labels.tolist() == [0, 1, 2, 3, 4, 5]


def test_trace_logits_are_the_models_on_the_generated_image(v3):
    trace = sample(v3, 3, labels=[2, 7, 9], seed=1, precision="fp32")
    for b in range(3):
        expected = image_logits(v3, torch.from_numpy(trace.tokens[b]), int(trace.labels[b]))
        assert np.allclose(trace.logits[b], expected.numpy(), atol=1e-5)


def test_seeded_sampling_repeats_and_seeds_differ(v3):
    a, b, c = sample(v3, 4, seed=5), sample(v3, 4, seed=5), sample(v3, 4, seed=6)
    assert np.array_equal(a.tokens, b.tokens) and a.seed == 5
    assert not np.array_equal(a.tokens, c.tokens)
    assert isinstance(sample(v3, 1).seed, int)  # a drawn seed is reported


def test_low_temperature_is_more_certain(v3):
    cold, hot = sample(v3, 4, temperature=0.3, seed=0), sample(v3, 4, temperature=1.5, seed=0)
    assert cold.entropy.mean() < hot.entropy.mean()
    assert np.allclose(softmax_at(cold.logits, 0.3), cold.probs, atol=1e-5)


@pytest.mark.parametrize("temperature", [0, -1, float("nan"), float("inf"), "hot"])
def test_bad_temperature_is_refused(v3, temperature):
    with pytest.raises(ValueError, match="temperature"):
        sample(v3, 1, temperature=temperature)


def test_bad_counts_and_labels_are_refused(v3):
    for n in (0, -3, 100000, 2.5):
        with pytest.raises(ValueError, match="number of samples"):
            sample(v3, n)
    with pytest.raises(ValueError, match="class labels"):
        sample(v3, 1, labels=10)
    with pytest.raises(ValueError, match="labels for"):
        sample(v3, 3, labels=[1, 2])


def test_unconditional_models_ignore_labels():
    v2 = tiny("v2")
    assert np.array_equal(sample(v2, 2, labels=3, seed=0).tokens, sample(v2, 2, labels=8, seed=0).tokens)


def test_prefix_completes_a_given_start(v3):
    prefix = np.random.default_rng(0).integers(0, 16, 300)
    trace = sample(v3, 3, prefix=prefix, seed=0)
    assert (trace.tokens[:, :300] == prefix).all() and trace.prefix_length == 300
    assert not np.array_equal(trace.tokens[0, 300:], trace.tokens[1, 300:])
    with pytest.raises(ValueError, match="prefix tokens"):
        sample(v3, 1, prefix=[16])


def test_forced_token_changes_only_the_future(v3):
    base = sample(v3, 2, seed=3)
    forced_token = (int(base.tokens[0, 400]) + 8) % 16
    what_if = sample(v3, 2, seed=3, forced={400: forced_token})
    assert np.array_equal(what_if.tokens[:, :400], base.tokens[:, :400])
    assert (what_if.tokens[:, 400] == forced_token).all()
    with pytest.raises(ValueError, match="forced"):
        sample(v3, 1, forced={784: 0})


def test_same_seed_rolls_the_same_dice_at_every_temperature(v3):
    """Inverse-CDF sampling with per-step uniforms: at a very high temperature every step is near uniform,
    so the token is about ``floor(u * K)`` for the same ``u`` whatever came before."""
    a, b = sample(v3, 2, temperature=1000.0, seed=9), sample(v3, 2, temperature=900.0, seed=9)
    assert (a.tokens == b.tokens).mean() > 0.95


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_bf16_and_int8_stay_close_to_fp32(v3, precision):
    fast = sample(v3, 2, seed=4, precision=precision)
    assert fast.precision == precision
    same_image = sample(v3, 2, seed=4, precision="fp32", prefix=fast.tokens)  # fp32 logits on the same image
    assert np.abs(fast.logits - same_image.logits).max() < 0.1


def test_auto_is_timed_once_per_model_shape_and_kept(caplog):
    model = tiny("v3", hidden=48)
    with caplog.at_level("INFO", logger="pixelar.planner"):
        first = planner.plan(model)
        again = planner.plan(tiny("v3", hidden=48))  # another model of that shape
    assert again == first and len(caplog.records) == 1 and "ms per call" in caplog.text
    assert first.precision in planner.paths(model, torch.device("cpu")) and first.tile in planner.TILES
    assert set(first.seconds) >= {("fp32", tile) for tile in planner.TILES}
    assert sample(model, 1, seed=0).precision == first.precision
    assert planner.plan(model, first.precision) == first  # asked for by name: the same path and tile


def test_auto_never_picks_a_path_less_accurate_than_allowed(monkeypatch):
    monkeypatch.setattr(planner, "MAX_PROB_DIFF", 0.0)  # only fp32 itself is that close to fp32
    chosen = planner.plan(tiny("v3", hidden=40))
    assert chosen.precision == "fp32" and chosen.prob_diff  # the others were timed and checked


def test_without_the_private_onednn_ops_int8_is_not_offered_and_sampling_still_works(monkeypatch):
    """A torch build without ``torch.ops.onednn``/``mkldnn``'s linear ops: int8 is never planned or run, bf16 runs
    as a plain ``F.linear``, and every path left samples."""
    monkeypatch.setattr(layers, "private_op", lambda namespace, name: None)
    cpu, model = torch.device("cpu"), tiny("v3", hidden=36)  # a shape no other test plans
    assert not layers.int8_available(cpu) and "int8" not in planner.paths(model, cpu)
    with pytest.raises(RuntimeError, match="oneDNN"):
        layers.Int8Linear(model.fc2, 16)
    assert not layers.SamplingLinear(model.fc2, torch.bfloat16, 16, relu=True).packed
    chosen = planner.plan(model)
    assert chosen.precision != "int8" and all(path != "int8" for path, _ in chosen.seconds)
    with pytest.raises(ValueError, match="precision int8 is not available"):
        sample(model, 1, precision="int8")
    bf16 = sample(model, 2, seed=4, precision="bf16")
    same_image = sample(model, 2, seed=4, precision="fp32", prefix=bf16.tokens)
    assert bf16.precision == "bf16" and np.abs(bf16.logits - same_image.logits).max() < 0.1
    assert sample(model, 1, seed=0).tokens.shape == (1, 784)
    monkeypatch.setenv("PIXELAR_PLAN", "int8:16")
    assert planner.plan(model).precision == "fp32"  # pinned to int8, where there is none: fp32


def test_where_tiles_are_exact_each_run_takes_its_cheapest_tile_and_elsewhere_the_plans():
    seconds = {("int8", 16): 0.8, ("int8", 32): 1.3, ("int8", 64): 2.2, ("int8", 128): 3.3, ("fp32", 16): 0.1}
    exact = planner.Plan("int8", 64, seconds, tile_exact=True)
    assert [exact.tile_for(n) for n in (1, 16, 17, 40, 480)] == [16, 16, 32, 64, 128]  # fp32's times do not count
    assert {planner.Plan("int8", 64, seconds).tile_for(n) for n in (1, 16, 480)} == {64}
    assert "cheapest tile" in exact.describe() and "every run uses it" in planner.Plan("int8", 64, seconds).describe()


def test_the_planner_finds_out_whether_a_rows_bits_depend_on_its_tile():
    """A model whose logits move by 1e-6 with the number of rows in a call (as a kernel chosen by row count may
    round): the planner sees it, and every run then uses the one planned tile."""
    drifting = tiny("v1", hidden=46)
    step = drifting.step
    drifting.step = lambda state, t, canvas: step(state, t, canvas) + 1e-6 * len(canvas)
    moved = planner.plan(drifting, "fp32")
    assert not moved.tile_exact and {moved.tile_for(n) for n in (1, 16, 480)} == {moved.tile}


def test_the_tile_score_weighs_one_user_against_a_class():
    assert planner.score({16: 1.0}) == 5.0  # a class of 480 is 30 calls: 5x its patience of 6 one-user waits
    assert planner.score({128: 1.0}) == 1.0  # one call for one user, 4 for a class
    assert planner.score({16: 0.1}) < planner.score({128: 1.0})  # small tiles win where calls cost little
    # where tiles are exact, one user takes a 16-row tile and a class 128-row ones: better than either alone
    assert planner.score({16: 0.7, 128: 3.6}) == 2.4 < min(planner.score({16: 0.7}), planner.score({128: 3.6}))


def test_a_path_with_exact_tiles_is_chosen_for_what_users_and_classes_really_wait():
    """The AVX2 machine's timings: on one tile fp32 scores best by a hair, but int8 with each run on its own
    tile is faster for one user and for a class."""
    seconds = {("fp32", 16): 0.88, ("fp32", 32): 1.33, ("fp32", 64): 2.18, ("fp32", 128): 4.24,
               ("int8", 16): 0.68, ("int8", 32): 1.28, ("int8", 64): 2.22, ("int8", 128): 3.61}
    exact = {"fp32": True, "int8": True}
    chosen = planner._choose(seconds, {"int8": 0.01}, exact, ["fp32", "int8"], True)
    assert (chosen.precision, chosen.tile, chosen.tile_for(16)) == ("int8", 128, 16)
    one_tile = planner._choose(seconds, {"int8": 0.01}, {}, ["fp32", "int8"], True)
    assert (one_tile.precision, one_tile.tile, one_tile.tile_for(16)) == ("fp32", 64, 64)


def test_fp32_is_used_when_asked_and_bad_precisions_are_refused(v3):
    assert sample(v3, 1, seed=0, precision="fp32").precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        sample(v3, 1, precision="fp16")


def test_top_k_keeps_k_bins_and_top_k_1_is_greedy(v3):
    trace = sample(v3, 2, seed=0, top_k=3, precision="fp32")
    assert ((trace.probs > 0).sum(-1) <= 3).all() and (trace.chosen_prob > 0).all()
    greedy = sample(v3, 2, seed=0, top_k=1, precision="fp32")
    assert np.array_equal(greedy.tokens, greedy.logits.argmax(-1))
    assert greedy.top_k == 1 and np.allclose(greedy.entropy, 0)


def test_top_p_keeps_the_shortest_run_reaching_p(v3):
    trace = sample(v3, 2, seed=0, top_p=0.8, precision="fp32")
    full = softmax_at(trace.logits, 1.0)
    kept = trace.probs > 0
    assert (trace.chosen_prob > 0).all()
    assert (np.where(kept, full, 0).sum(-1) >= 0.8 - 1e-5).all()  # reaches p
    smallest_kept = np.where(kept, full, np.inf).min(-1)
    assert (np.where(kept, full, 0).sum(-1) - smallest_kept < 0.8 + 1e-5).all()  # and no bin could go
    assert np.allclose(softmax_at(trace.logits, 1.0, top_p=0.8), trace.probs, atol=1e-6)


def test_filters_keep_the_dice(v3):
    """top-k/top-p only change where a step's uniform lands: a filter that keeps every bin changes nothing."""
    plain = sample(v3, 2, seed=7, precision="fp32")
    assert np.array_equal(sample(v3, 2, seed=7, precision="fp32", top_k=16, top_p=1.0).tokens, plain.tokens)


@pytest.mark.parametrize("option", [{"top_k": 0}, {"top_k": 17}, {"top_k": 2.5}, {"top_p": 0}, {"top_p": 1.5}, {"top_p": "x"}])
def test_bad_filters_are_refused(v3, option):
    with pytest.raises(ValueError, match="top-"):
        sample(v3, 1, **option)


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.one_of(st.just(0.0), st.floats(1e-9, 1.0)), min_size=2, max_size=16).filter(lambda w: sum(w) > 0),
    u=st.one_of(st.floats(0, 1, exclude_max=True, width=32), st.just(float(np.nextafter(np.float32(1), np.float32(0))))),
)
def test_inverse_cdf_never_draws_a_zero_probability_bin(weights, u):
    probs = torch.tensor(weights, dtype=torch.float32)
    probs = (probs / probs.sum()).unsqueeze(0)
    token = int(_inverse_cdf(probs, torch.tensor([u], dtype=torch.float32)))
    assert probs[0, token] > 0


@pytest.mark.parametrize(
    "kwargs, field",
    [({"labels": [3.7, 9.9], "n": 2}, "class labels"), ({"prefix": [3.9]}, "prefix tokens"),
     ({"forced": {5.7: 1}}, "forced step"), ({"forced": {5: 1.5}}, "forced token"), ({"seed": 1.5}, "seed"),
     ({"seed": -5}, "seed"), ({"n": True}, "number of samples"), ({"labels": "3"}, "class labels")],
)
def test_non_integers_are_refused_not_truncated(v3, kwargs, field):
    with pytest.raises(ValueError, match=field):
        sample(v3, **{"n": 1, **kwargs})


def test_integral_floats_are_whole_numbers(v3):
    a = sample(v3, 2.0, labels=[3.0, 9.0], seed=4.0, prefix=np.array([1.0, 2.0]), forced={5.0: 7.0})
    b = sample(v3, 2, labels=[3, 9], seed=4, prefix=[1, 2], forced={5: 7})
    assert np.array_equal(a.tokens, b.tokens)


def test_sampling_leaves_the_global_rng_and_the_models_mode_alone(v3):
    state = torch.get_rng_state()
    v3.train()
    sample(v3, 1)  # no seed: one is drawn elsewhere
    assert v3.training and torch.equal(torch.get_rng_state(), state)
    v3.eval()


@pytest.mark.parametrize("kind, precision, plan, workers", [
    ("v1", "fp32", None, 1), ("v3", "bf16", None, 1), ("v3", "int8", None, 2), ("v4", "fp32", None, 1),
    ("v4", "bf16", None, 2), ("v3", "int8", "fp32:16", 1), ("v4", "fp32", "fp32:16", 2),
])
def test_merged_requests_get_exactly_what_they_get_alone(kind, precision, plan, workers, monkeypatch):
    """Different seeds, temperatures, sizes, filters, prefixes and forced tokens in one run: each caller's trace
    is bit-identical to the one it gets alone, for every path, with the measured tile and with 16-row tiles, on
    one worker or shared by two."""
    if plan:
        monkeypatch.setenv("PIXELAR_PLAN", plan)
    model = build_model("v4", channels=8, layers=3, head=16).eval() if kind == "v4" else tiny(kind, hidden=64)
    asks = [
        dict(n=3, labels=[1, 2, 3], temperature=1.0, seed=1),
        dict(n=130, labels=7, temperature=0.8, seed=2, top_k=4),  # more than one row tile by itself
        dict(n=1, labels=0, temperature=1.3, seed=3, top_p=0.9, prefix=np.arange(40) % 16),
        dict(n=5, temperature=1.0, seed=1, forced={300: 15, 301: 0}),
    ]
    merged = sample_many(model, [Request.of(model, **ask) for ask in asks], precision, workers)
    for ask, trace in zip(asks, merged):
        alone = sample(model, **ask, precision=precision)
        for field in ("tokens", "logits", "probs", "entropy", "chosen_prob", "labels"):
            assert np.array_equal(getattr(trace, field), getattr(alone, field)), (ask, field)
        assert (trace.seed, trace.temperature, trace.top_k, trace.top_p) == (alone.seed, alone.temperature, alone.top_k, alone.top_p)


def test_a_merged_trace_owns_only_its_own_rows(v3):
    """A session that keeps its trace keeps its own rows, not the whole merged batch (issue 15, point 4)."""
    asks = [dict(n=1, seed=1), dict(n=100, seed=2), dict(n=1, seed=3)]
    first, big, last = sample_many(v3, [Request.of(v3, **ask) for ask in asks])
    for field in ("tokens", "logits", "probs", "entropy", "chosen_prob", "labels"):
        mine = getattr(first, field)
        assert mine.base is None and len(mine) == 1, field
        assert not np.shares_memory(mine, getattr(big, field)) and not np.shares_memory(mine, getattr(last, field))
    kept = sum(getattr(first, f).nbytes for f in ("tokens", "logits", "probs", "entropy", "chosen_prob", "labels"))
    assert kept < 2 * 784 * (8 + 4 + 16 * 4 * 2 + 4 + 4)  # one image's worth
