import threading

import pytest
import torch

from pixelar import TrainConfig, build_model, evaluate, load_checkpoint, load_dataset, read_metadata, sample, save_checkpoint, train
from pixelar.checkpoints import run_metadata
from pixelar import training as pixelar_training
from helpers import tiny

pytestmark = pytest.mark.slow  # trains models or a classifier


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist-5k")


def quick(**overrides):
    return TrainConfig(**{"steps": 300, "batch_size": 256, "eval_every": 100, "eval_images": 30, "seed": 0, **overrides})


def test_a_short_run_beats_uniform_clearly_and_v3_beats_v1(mnist5k):
    nll = {}
    for name in ("v1", "v3"):
        model = tiny(name, hidden=128)
        train(model, mnist5k, quick(steps=400, lr_schedule="cosine"))
        nll[name] = evaluate(model, mnist5k, max_images=100)
    assert nll["v1"] < 1.5 and nll["v3"] < 1.5  # uniform over 16 bins is 4.0 bits/pixel
    assert nll["v3"] < nll["v1"] - 0.02


def test_events_report_progress_and_held_out_checks(mnist5k):
    events = []
    result = train(tiny("v2"), mnist5k, quick(report_seconds=0.0), on_event=events.append)
    assert [e.step for e in events] == sorted(e.step for e in events)
    checks = [e for e in events if e.held_out_nll is not None]
    assert [e.step for e in checks] == [100, 200, 300]
    assert events[-1].finished and not events[-1].stopped and events[-1].step == 300
    assert all(e.loss is not None and 0 < e.loss < 5 for e in events)
    assert all(e.samples_per_second > 0 and e.eta_seconds >= 0 and e.device == "cpu" for e in events)
    assert events[-1].samples_seen == result.samples_seen == 300 * 256
    assert result.held_out_nll == checks[-1].held_out_nll


def test_seeded_cpu_runs_repeat(mnist5k):
    models = [tiny("v3"), tiny("v3")]
    results = [train(m, mnist5k, quick(steps=60, eval_every=0)) for m in models]
    assert results[0].held_out_nll == results[1].held_out_nll
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(a, b)


def test_stop_is_honoured_and_leaves_a_usable_model(mnist5k):
    stop = threading.Event()
    model = tiny("v3")

    def on_event(event):
        if event.step >= 20:
            stop.set()

    result = train(model, mnist5k, quick(steps=100000, report_seconds=0.0), on_event=on_event, stop=stop)
    assert result.stopped and 20 <= result.steps <= 22
    assert result.history[-1].finished and result.history[-1].stopped
    assert not model.training
    assert sample(model, 1, seed=0).tokens.shape == (1, 784)


@pytest.mark.parametrize(
    "overrides, match",
    [({"steps": 0}, "steps"), ({"batch_size": 0}, "batch size"), ({"learning_rate": -1.0}, "learning rate"),
     ({"learning_rate": float("nan")}, "learning rate"), ({"lr_schedule": "wild"}, "schedule"),
     ({"max_seconds": 0.0}, "time budget")],
)
def test_bad_settings_are_refused_before_any_work(mnist5k, overrides, match):
    model = tiny("v1")
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=match):
        train(model, mnist5k, quick(**overrides))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_batch_beyond_the_models_memory_budget_is_refused_before_any_work():
    """V4 takes 50 MB an image in training (benchmarks/train_memory.py): 61 images overrun the 3 GB budget."""
    with pytest.raises(ValueError, match="batch size must be at most 60 images for this v4"):
        train(build_model("v4"), None, TrainConfig(batch_size=61))
    with pytest.raises(ValueError, match=r"batch size must be at most 21,802 \(image, pixel\) pairs for this v3"):
        train(build_model("v3", hidden=4096), None, TrainConfig(batch_size=30_000))


def test_a_checkpoint_retrains_to_identical_weights_from_its_own_metadata(mnist5k, tmp_path):
    """The seed covers everything: initial weights, batches and dropout; the global random state is not used."""
    config = TrainConfig(steps=15, batch_size=64, eval_every=0, eval_images=4, seed=11, lr_schedule="cosine")
    model = build_model("v3", seed=11, hidden=16)
    state = torch.get_rng_state()
    result = train(model, mnist5k, config)
    assert torch.equal(torch.get_rng_state(), state)
    path = save_checkpoint(model, tmp_path / "m.safetensors", **run_metadata(model, result, config, mnist5k, 1.0, 4))

    meta = read_metadata(path)
    torch.manual_seed(12345)  # whatever the global state, the rerun is the same
    again = build_model(meta["model"], seed=meta["seed"], **meta["config"])
    train(again, mnist5k, TrainConfig(steps=meta["steps"], batch_size=meta["batch_size"], lr_schedule=meta["lr_schedule"],
                                      learning_rate=meta["learning_rate"], eval_every=0, eval_images=4, seed=meta["seed"],
                                      precision=meta["precision"]))
    loaded = load_checkpoint(path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), again.state_dict().values()))
    other = build_model("v3", seed=12, hidden=16)
    assert not torch.equal(other.fc1.weight, build_model("v3", seed=11, hidden=16).fc1.weight)


def test_evaluating_n_images_spreads_them_over_the_classes(mnist5k):
    model = tiny("v1", hidden=16)
    assert evaluate(model, mnist5k, 30) == evaluate(model, mnist5k.held_out.subset(30))
    assert sorted(set(mnist5k.held_out.subset(30).labels.tolist())) == list(range(10))


def test_a_time_budget_ends_the_run_with_the_schedule_annealed(mnist5k):
    config = quick(steps=10**6, eval_every=0, max_seconds=1.0, lr_schedule="cosine", report_seconds=0.0)
    result = train(tiny("v1"), mnist5k, config)
    assert 10 < result.steps < 10**6 and not result.stopped
    assert result.seconds >= 1.0
    assert result.history[-2].learning_rate < 0.1 * 1e-3  # the last steps ran at the end of the cosine


def test_a_run_waits_between_steps_while_it_must_yield(mnist5k, monkeypatch):
    monkeypatch.setattr(pixelar_training, "YIELD_SECONDS", 600.0)
    go, results = threading.Event(), []
    runner = threading.Thread(target=lambda: results.append(
        train(tiny("v1", hidden=8), mnist5k, TrainConfig(steps=3, batch_size=16, eval_every=0, eval_images=2), yield_to=go)))
    runner.start()
    runner.join(timeout=1.0)
    assert runner.is_alive() and not results  # waiting before its first step
    go.set()
    runner.join(timeout=120)
    assert results[0].steps == 3
