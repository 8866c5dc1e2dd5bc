"""V4 (gated PixelCNN) and what every model shares with it: causality, the begin/step sampler, training, checkpoints."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelar import TrainConfig, evaluate, influence, load_checkpoint, load_dataset, sample, save_checkpoint, train
from pixelar.device import autocast, bf16_is_native, compute_dtype
from pixelar.models import MODELS, N_PIXELS, build_model, count_parameters
from helpers import tiny


def tiny_v4(**overrides):
    torch.manual_seed(0)
    return build_model("v4", **{"channels": 8, "head": 16, **overrides}).eval()  # 10 layers: the whole past


def small(name):
    return tiny_v4() if name == "v4" else tiny(name)


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist-5k")


def test_v4_defaults_are_a_small_conditional_model():
    model = build_model("v4")
    assert 500_000 <= count_parameters(model) <= 1_500_000
    assert model.conditional and model.k == 16 and model.config.context == N_PIXELS
    assert model.dilations == [1, 2, 4, 8, 1, 2, 4, 8, 1, 2]


def test_bad_v4_settings_are_refused():
    for settings, match in (({"context": 28}, "context"), ({"dropout": 1.0}, "dropout"), ({"layers": 0}, "layers"),
                            ({"k": 1}, "K"), ({"hidden": 8}, "no setting")):
        with pytest.raises(ValueError, match=match):
            build_model("v4", **settings)


@pytest.mark.parametrize("name", list(MODELS))
def test_logits_at_every_step_ignore_that_step_and_all_later_ones(name):
    model = small(name)
    tokens = torch.randint(0, 16, (N_PIXELS,))
    changed = tokens.repeat(N_PIXELS, 1)  # image t has its pixels t.. redrawn
    later = torch.arange(N_PIXELS).unsqueeze(1) <= torch.arange(N_PIXELS)  # (784, 784): pixel >= t
    changed[later] = (changed[later] + torch.randint(1, 16, (int(later.sum()),))) % 16
    labels = torch.full((N_PIXELS,), 3)
    with torch.no_grad():
        base = model.image_logits(tokens.view(1, -1), labels[:1])[0]  # (784, K)
        logits = torch.cat([model.image_logits(chunk, labels[: len(chunk)]) for chunk in changed.split(98)])
    steps = torch.arange(N_PIXELS)
    # batches of 98 vs 1 image: a convolution's rounding may depend on the batch (2e-7 on an AVX-512 AMD), a leak
    # moves logits by far more than the tolerance
    assert torch.allclose(logits[steps, steps], base, rtol=0, atol=1e-5)  # step t's logits when pixels >= t differ
    seen = (logits[steps[:-1], steps[1:]] - base[1:]).abs().amax(-1) > 1e-4  # ... and step t+1 does see pixel t
    assert seen.float().mean() > 0.95


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("step", [0, 1, 27, 28, 29, 400, 783])
def test_gradient_of_step_t_with_respect_to_tokens_at_t_and_later_is_zero(name, step):
    model = small(name)
    tokens = torch.randint(0, 16, (N_PIXELS,))
    onehot = F.one_hot(tokens, 16).float().unsqueeze(0).requires_grad_()
    model.onehot_logits(onehot, torch.tensor([3]))[0, step].sum().backward()
    moved = onehot.grad[0].abs().sum(-1)  # (784,)
    assert (moved[step:] == 0).all()
    if step > 0:
        assert moved[step - 1] > 0


def test_influence_map_of_v3_is_its_window_and_of_v4_the_whole_past():
    tokens = torch.randint(0, 16, (N_PIXELS,))
    for step in (30, 400, 783):
        v3 = influence(tiny("v3"), tokens, 5, step).ravel()
        assert (v3[step - 28 : step] > 0).all() and (v3[: step - 28] == 0).all() and (v3[step:] == 0).all()
        v4 = influence(tiny_v4(), tokens, 5, step).ravel()
        assert (v4[:step] > 0).all() and (v4[step:] == 0).all(), step
    assert influence(tiny_v4(), tokens, 5, 0).sum() == 0  # the first pixel sees nothing


def test_influence_refuses_bad_steps_and_tokens():
    with pytest.raises(ValueError, match="step"):
        influence(tiny_v4(), torch.zeros(N_PIXELS, dtype=torch.long), 0, 784)
    with pytest.raises(ValueError, match="tokens"):
        influence(tiny_v4(), torch.full((N_PIXELS,), 16), 0, 5)


def test_onehot_logits_equal_image_logits():
    tokens, labels = torch.randint(0, 16, (2, N_PIXELS)), torch.tensor([4, 9])
    for name in MODELS:
        model = small(name)
        with torch.no_grad():
            expected = model.image_logits(tokens, labels)
            assert torch.allclose(model.onehot_logits(F.one_hot(tokens, 16).float(), labels), expected, atol=1e-5), name


def test_v4_depends_on_the_class():
    model = tiny_v4()
    tokens = torch.randint(0, 16, (2, N_PIXELS))
    with torch.no_grad():
        assert not torch.equal(model.image_logits(tokens, torch.tensor([1, 1])), model.image_logits(tokens, torch.tensor([2, 2])))


@pytest.mark.parametrize("dilation_cycle", [4, 1])
def test_cached_sampler_logits_equal_a_full_forward_pass_at_every_step(dilation_cycle):
    model = tiny_v4(dilation_cycle=dilation_cycle)
    trace = sample(model, 3, labels=[2, 7, 9], seed=1, prefix=np.arange(40) % 16, forced={100: 15, 500: 0}, precision="fp32")
    with torch.no_grad():
        full = model.image_logits(torch.from_numpy(trace.tokens), torch.from_numpy(trace.labels))
    assert np.allclose(trace.logits, full.numpy(), atol=1e-5)
    assert trace.tokens[0, 100] == 15 and (trace.tokens[:, :40] == np.arange(40) % 16).all()


def test_bf16_cached_sampling_stays_close_to_the_fp32_forward_pass():
    model = tiny_v4()
    trace = sample(model, 2, labels=[3, 8], seed=2, precision="bf16")
    with torch.no_grad():
        full = model.image_logits(torch.from_numpy(trace.tokens), torch.from_numpy(trace.labels))
    assert trace.precision == "bf16" and np.abs(trace.logits - full.numpy()).max() < 0.1


def test_v4_same_seed_repeats_and_seeds_differ():
    model = tiny_v4()
    a, b, c = sample(model, 4, labels=5, seed=3), sample(model, 4, labels=5, seed=3), sample(model, 4, labels=5, seed=4)
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.logits, b.logits)
    assert not np.array_equal(a.tokens, c.tokens)


def test_v4_checkpoint_round_trip(tmp_path):
    model = tiny_v4(dropout=0.2)
    path = save_checkpoint(model, tmp_path / "v4.safetensors", dataset="mnist-5k", steps=3)
    loaded = load_checkpoint(path)
    assert loaded.name == "v4" and loaded.config == model.config and loaded.metadata["steps"] == 3
    assert np.array_equal(sample(loaded, 2, labels=1, seed=0).tokens, sample(model, 2, labels=1, seed=0).tokens)


def test_training_a_tiny_v4_lowers_its_held_out_nll(mnist5k):
    model = tiny_v4()
    before = evaluate(model, mnist5k, max_images=10)
    result = train(model, mnist5k, TrainConfig(steps=15, batch_size=4, eval_every=0, eval_images=10, seed=0))
    assert result.samples_seen == 15 * 4  # whole images
    assert result.held_out_nll < before - 1.0  # from about 4 bits/pixel


def test_evaluation_is_the_mean_cross_entropy_of_the_full_forward_pass(mnist5k):
    model = tiny_v4()
    images = mnist5k.held_out.subset(12)
    tokens, labels = images.tokens(16), images.labels
    with torch.no_grad():
        expected = F.cross_entropy(model.image_logits(tokens, labels).reshape(-1, 16), tokens.reshape(-1)) / math.log(2)
    assert evaluate(model, mnist5k, max_images=12) == pytest.approx(expected.item(), rel=1e-5)


def test_auto_precision_is_bf16_exactly_where_it_is_native():
    cpu = torch.device("cpu")
    a = torch.randn(4, 4)
    with autocast(compute_dtype("auto", cpu), cpu):
        native = (a @ a).dtype == torch.bfloat16
    assert native == bf16_is_native(cpu)
    with autocast(compute_dtype("fp32", cpu), cpu):
        assert (a @ a).dtype == torch.float32


def test_auto_samples_each_model_with_one_of_its_own_paths_and_v4_has_no_int8():
    v4 = build_model("v4", channels=8, layers=2, head=16).eval()
    v3 = build_model("v3", hidden=32).eval()
    assert sample(v4, 1, labels=3, seed=0).precision in ("fp32", "bf16")
    assert sample(v3, 1, labels=3, seed=0).precision in ("fp32", "bf16", "int8")
    assert sample(v4, 1, labels=3, seed=0, precision="bf16").precision == "bf16"  # asked for: given
    with pytest.raises(ValueError, match="int8 is not available for v4"):
        sample(v4, 1, labels=3, seed=0, precision="int8")
