import pytest
import torch

from pixelar.context import gather_context, pad_tokens
from pixelar.models import MODELS, Dropout, build_model, count_parameters
from helpers import image_logits, seed_reference_logits, tiny

MLPS = ("v1", "v2", "v3")


def test_parameter_counts_at_defaults_are_the_seeds():
    counts = {name: count_parameters(build_model(name)) for name in MLPS}
    assert counts == {"v1": 1_554_448, "v2": 1_621_776, "v3": 1_609_920}


def test_seed_defaults():
    c = build_model("v3").config
    assert (c.k, c.context, c.hidden, c.dropout, c.pos_dim, c.token_dim, c.class_dim) == (16, 28, 1024, 0.25, 32, 16, 16)
    assert list(MODELS) == ["v1", "v2", "v3", "v4"]
    assert [MODELS[n].conditional for n in MODELS] == [False, False, True, True]
    assert [MODELS[n].uses_position for n in MODELS] == [False, True, True, True]


@pytest.mark.parametrize("name", MLPS)
@pytest.mark.parametrize("k", [16, 5])
def test_table_lookup_computes_the_seeds_forward(name, k):
    model = tiny(name, k=k, hidden=64)
    context = torch.randint(0, k + 1, (40, 28))
    position = torch.randint(0, 784, (40,))
    label = torch.randint(0, 10, (40,))
    with torch.no_grad():
        assert torch.allclose(model(context, position, label), seed_reference_logits(model, context, position, label), atol=1e-5)


@pytest.mark.parametrize("name", MLPS)
def test_gradients_match_the_seeds_forward(name):
    model = tiny(name, hidden=16).train()
    model.dropout.p = 0.0
    context, position, label = torch.randint(0, 17, (8, 28)), torch.randint(0, 784, (8,)), torch.randint(0, 10, (8,))
    grads = []
    for forward in (model, lambda *a: seed_reference_logits(model, *a)):
        model.zero_grad()
        forward(context, position, label).square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-4), n


def test_context_of_pixel_p_is_the_28_before_it_with_start_padding():
    tokens = torch.arange(784).remainder(16).view(1, 784)
    padded = pad_tokens(tokens, 28, start_token=16)
    for p in (0, 1, 27, 28, 29, 300, 783):
        context = gather_context(padded, torch.tensor([0]), torch.tensor([p]), 28)[0]
        expected = [16] * max(0, 28 - p) + tokens[0, max(0, p - 28) : p].tolist()
        assert context.tolist() == expected, p


@pytest.mark.parametrize("name", MLPS)
def test_output_for_pixel_p_does_not_depend_on_pixel_p_or_later(name):
    model = tiny(name)
    tokens = torch.randint(0, 16, (784,))
    base = image_logits(model, tokens, label=3)
    for p in (0, 5, 28, 400, 783):
        changed = tokens.clone()
        changed[p:] = (changed[p:] + 7) % 16
        logits = image_logits(model, changed, label=3)
        assert torch.equal(logits[: p + 1], base[: p + 1]), p  # pixel p's prediction sees only < p
        if p + 1 < 784:
            assert not torch.equal(logits[p + 1], base[p + 1])  # ... and p + 1 does see p


def test_v3_depends_on_the_class_and_v1_v2_do_not():
    tokens = torch.randint(0, 16, (784,))
    for name, depends in (("v1", False), ("v2", False), ("v3", True)):
        model = tiny(name)
        assert (not torch.equal(image_logits(model, tokens, 1), image_logits(model, tokens, 2))) == depends, name


def test_dropout_only_in_training_mode():
    model = tiny("v3", hidden=256)
    args = (torch.randint(0, 17, (64, 28)), torch.randint(0, 784, (64,)), torch.randint(0, 10, (64,)))
    with torch.no_grad():
        assert torch.equal(model(*args), model(*args))
        model.train()
        assert not torch.equal(model(*args), model(*args))


def test_dropout_keeps_three_quarters_and_rescales():
    drop = Dropout(0.25).train()
    out = drop(torch.ones(1000, 1000))
    assert abs((out > 0).float().mean().item() - 0.75) < 0.005
    assert torch.allclose(out[out > 0], torch.tensor(4 / 3))


def test_bad_model_settings_are_refused():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("v5")
    with pytest.raises(ValueError, match="K"):
        build_model("v1", k=1)
    with pytest.raises(ValueError, match="no setting"):
        build_model("v1", token_dim=3)


@pytest.mark.parametrize("name", ["v1", "v2", "v3"])
def test_under_bf16_autocast_fc1_is_the_seeds_dense_matmul(name):
    """The bf16 training path (dense features @ fc1) and the fp32 path (table lookup) compute the same function."""
    model = build_model(name, hidden=64).eval()
    context, position, label = torch.randint(0, 17, (8, 28)), torch.randint(0, 784, (8,)), torch.randint(0, 10, (8,))
    exact = model(context, position, label)
    dense = torch.nn.functional.linear(model.dense_features(context, position, label), model.fc1.weight)
    assert torch.allclose(model._after_fc1(dense), exact, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = model(context, position, label)
    assert fast.dtype == torch.bfloat16 and torch.allclose(fast.float(), exact, atol=0.05)
