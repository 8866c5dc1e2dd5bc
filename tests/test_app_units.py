"""The app's pieces in-process: input checks, the error wrapper, the checkpoint shelf, session workspaces, the
data-set fallback and the background training run."""
import html
import logging
import shutil
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from hypothesis import given, settings as hypothesis_settings, strategies as st

import pixelar
from demo import common, training
from demo.data import DataSets
from demo.models import TRAINED_PER_SESSION, Shelf, Workspace
from demo.training import (BUDGETS, SEED_RECIPE_SAMPLES, Plan, Shape, Throughput, TrainingRun, TrainingSlot,
                           budget_choices, format_seconds, run_seconds)


@pytest.mark.parametrize("value", [0.1, 1, "1.5", 2.0])
def test_temperatures_in_range_are_accepted(value):
    assert common.check_temperature(value) == float(value)


@pytest.mark.parametrize("value, shown", [(0, "got 0"), (-1, "got -1"), (5, "got 5"), (2.01, "got 2.01"),
                                          (float("nan"), "got nan"), (float("inf"), "got inf"), ("hot", "got 'hot'"),
                                          (None, "the box is empty"), ("", "the box is empty")])
def test_temperatures_out_of_range_are_refused_never_clamped(value, shown):
    with pytest.raises(ValueError, match="Temperature must be a number from 0.1 to 2") as refused:
        common.check_temperature(value)
    assert shown in str(refused.value)


@pytest.mark.parametrize("value, ok", [(1, True), (64, True), (16.0, True), (0, False), (65, False), (1000, False),
                                       (2.5, False), (True, False), ("3", False), (None, False)])
def test_sample_counts(value, ok):
    if ok:
        assert common.check_count(value) == int(value)
    else:
        with pytest.raises(ValueError, match="Samples must be a whole number from 1 to 64"):
            common.check_count(value)


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), (0, 0), (7.0, 7), (2**31 - 1, 2**31 - 1)])
def test_good_seeds(value, expected):
    assert common.check_seed(value) == expected


@pytest.mark.parametrize("value", [-1, -5, 2**31, 1.5, "7", True])
def test_bad_seeds_are_refused_naming_the_field_and_its_range(value):
    with pytest.raises(ValueError, match=r"Seed must be a whole number from 0 to 2147483647, got"):
        common.check_seed(value)


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), (0, None), (1, 1), (16, 16), (5.0, 5)])
def test_top_k_is_off_or_a_number_of_bins(value, expected):
    assert common.check_top_k(value) == expected


@pytest.mark.parametrize("value", [-1, 17, 2.5, "5"])
def test_bad_top_k_is_refused(value):
    with pytest.raises(ValueError, match="Top-k must be 0 .off. or a whole number from 1 to 16"):
        common.check_top_k(value)


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), (1, None), (1.0, None), (0.9, 0.9), (0.05, 0.05)])
def test_top_p_is_off_or_a_probability(value, expected):
    assert common.check_top_p(value) == expected


@pytest.mark.parametrize("value", [0, -0.1, 1.5, float("nan"), "x"])
def test_bad_top_p_is_refused(value):
    with pytest.raises(ValueError, match="Top-p must be a number above 0 and at most 1"):
        common.check_top_p(value)


def test_next_seed_keeps_the_seed_only_when_asked():
    assert [common.next_seed(42, new_each_time=False) for _ in range(5)] == [42] * 5
    drawn = [common.next_seed(42, new_each_time=True) for _ in range(20)]
    assert len(set(drawn)) >= 19 and all(0 <= s <= common.SEED_MAX for s in drawn)
    empty = [common.next_seed(None, new_each_time=True) for _ in range(20)]
    assert len(set(empty)) >= 19


@pytest.mark.parametrize("value", [None, ""])
def test_an_empty_seed_box_is_refused_unless_a_new_seed_is_asked_for(value):
    """Issue 20.7: an empty box with "New seed each time" unticked drew a random seed silently."""
    with pytest.raises(ValueError, match=r"^Seed is empty: type a seed from 0 to 2147483647, or tick New seed each time$"):
        common.next_seed(value, new_each_time=False)


def test_class_checks_follow_the_model():
    v1, v3 = pixelar.build_model("v1", hidden=8), pixelar.build_model("v3", hidden=8)
    names = list(pixelar.data.DIGITS)
    assert common.check_class(v1, 99, names) is None  # ignored: V1 is not class-conditional
    assert common.check_class(v3, common.ALL_CLASSES, names) is None
    assert common.check_class(v3, 3, names) == 3
    with pytest.raises(ValueError, match="Digit must be a whole number from 0 to 9, got 10"):
        common.check_class(v3, 10, names)
    with pytest.raises(ValueError, match="Class must be a whole number from 0 to 9, got 3.5"):
        common.check_class(v3, 3.5, [f"c{i}" for i in range(10)])


def test_the_sampler_controls_check_every_field_in_one_place(tiny_checkpoints):
    import gradio as gr

    shelf = Shelf(tiny_checkpoints)
    with gr.Blocks():
        controls = common.sampler_controls(shelf, gr.State(None))
    assert len(controls.inputs) == 7
    settings = controls.read(None, "v3", 7, 0.8, 5, 0.9, 123, False)
    assert (settings.label, settings.temperature, settings.top_k, settings.top_p, settings.seed) == (7, 0.8, 5, 0.9, 123)
    assert settings.sample_kwargs() == {"labels": 7, "temperature": 0.8, "seed": 123, "top_k": 5, "top_p": 0.9}
    assert controls.read(None, "v1", 7, 1, 0, 1, 5, False).label is None  # V1 ignores the class
    assert len({controls.read(None, "v3", 7, 1, 0, 1, 5, True).seed for _ in range(10)}) >= 9  # new each time
    assert len({controls.read(None, "v3", 7, 1, 0, 1, None, True).seed for _ in range(10)}) >= 9  # an empty box too
    for values, message in [
        (("v3", 7, 0, 0, 1, 5, False), "Temperature must be a number from 0.1 to 2, got 0"),
        (("v3", 7, 1, 99, 1, 5, False), "Top-k must be 0"),
        (("v3", 7, 1, 0, 0, 5, False), "Top-p must be"),
        (("v3", 7, 1, 0, 1, -5, False), "Seed must be a whole number from 0 to 2147483647, got -5"),
        (("v3", 7, 1, 0, 1, -5, True), "Seed must be a whole number from 0 to 2147483647, got -5"),
        (("v3", 7, 1, 0, 1, None, False), "Seed is empty: type a seed from 0 to 2147483647, or tick New seed each time"),
        (("v3", 12, 1, 0, 1, 5, False), "Digit must be a whole number from 0 to 9, got 12"),
        (("v9", 7, 1, 0, 1, 5, False), "unknown model 'v9'"),
    ]:
        with pytest.raises(ValueError, match=message):
            controls.read(None, *values)


def test_user_errors_become_short_escaped_messages():
    @common.friendly
    def handler(name):
        raise ValueError(f"unknown model {name!r}")

    with pytest.raises(gr.Error) as error:
        handler("<script>alert(1)</script>")
    assert error.value.message == "unknown model '&lt;script&gt;alert(1)&lt;/script&gt;'"


def test_unexpected_errors_are_logged_and_named_only(caplog):
    @common.friendly
    def handler():
        yield 1
        raise ZeroDivisionError("secret internals")

    with caplog.at_level(logging.ERROR), pytest.raises(gr.Error) as error:
        list(handler())
    assert "ZeroDivisionError" in error.value.message and "secret" not in error.value.message
    assert "still running" in error.value.message
    assert "secret internals" in caplog.text  # the server log keeps the details


def test_shelf_offers_the_shipped_models_in_order(tiny_checkpoints, tmp_path):
    for path in tiny_checkpoints.glob("*.safetensors"):
        shutil.copy(path, tmp_path)
    (tmp_path / "notes.safetensors").write_bytes(b"not a checkpoint")  # skipped, not fatal
    shelf = Shelf(tmp_path)
    names = [name for _, name in shelf.choices(None)]
    assert names == ["v1", "v2", "v3", "v4"]
    assert shelf.default(None) == "v3"
    assert shelf.choices(None)[2][0].startswith("V3 · pretrained · ")
    assert shelf.by_kind() == {"v1": "v1", "v2": "v2", "v3": "v3", "v4": "v4"}
    model = shelf.get("v3", None)
    assert model.name == "v3" and shelf.get("v3", None) is model  # loaded once, shared
    with pytest.raises(ValueError, match="unknown model 'v9'; choose one of v1, v2, v3, v4"):
        shelf.get("v9", None)


def test_a_shipped_model_with_another_context_says_so(tmp_path):
    """The label reads the loaded model's config (``load_checkpoint`` keeps no "config" in the metadata)."""
    shutil.copy(Path(__file__).resolve().parents[1] / "checkpoints" / "v3-context56.safetensors", tmp_path)
    [(label, name)] = Shelf(tmp_path).choices(None)
    assert name == "v3-context56"
    assert label.startswith("v3-context56 (V3) · pretrained · context 56 · ")


def test_shelf_skips_bad_files_with_a_notice_and_a_log_line(app_checkpoints, caplog):
    shelf = Shelf(app_checkpoints)
    assert [name for _, name in shelf.choices(None)] == ["v1", "v2", "v3", "v4"]
    assert list(shelf.refused()) == ["huge-claim.safetensors", "list-header.safetensors", "nan-weights.safetensors"]
    shown = html.unescape(shelf.notice())  # Markdown whose names are character references
    assert "Skipped 3 file(s)" in shown and "nan-weights.safetensors" in shown
    assert sum("skipping" in r.message for r in caplog.records) == 3
    shelf.notice()
    assert sum("skipping" in r.message for r in caplog.records) == 3  # logged once, not at every look


def test_shelf_sees_checkpoints_written_while_it_runs(tiny_checkpoints, tmp_path):
    shelf = Shelf(tmp_path)
    assert shelf.choices(None) == [] and shelf.default(None) is None
    with pytest.raises(ValueError, match="there are no models yet"):
        shelf.get("v3", None)
    assert "Train" in shelf.hint()
    shutil.copy(tiny_checkpoints / "v3.safetensors", tmp_path / "v3.safetensors")
    assert [name for _, name in shelf.choices(None)] == ["v3"]


def test_trained_models_belong_to_their_session_only(tiny_checkpoints):
    shelf = Shelf(tiny_checkpoints)
    mine, theirs = Workspace(), Workspace()
    model = pixelar.build_model("v3", hidden=8)
    model.metadata = {"steps": 10, "dataset": "mnist-5k", "held_out_nll": 1.5}
    name = mine.add(model)
    assert name == "my-v3-1"
    assert ("my-v3-1 · trained here · 1.50 bits/px at K 16", "my-v3-1") in shelf.choices(mine)
    assert "my-v3-1" not in [n for _, n in shelf.choices(theirs)]
    assert shelf.get("my-v3-1", mine) is model
    with pytest.raises(ValueError, match="unknown model"):
        shelf.get("my-v3-1", theirs)


def test_a_workspace_keeps_its_newest_models_and_cleans_up():
    workspace = Workspace()
    names = [workspace.add(pixelar.build_model("v1", hidden=8)) for _ in range(TRAINED_PER_SESSION + 2)]
    assert list(workspace.models) == names[-TRAINED_PER_SESSION:]
    folder = workspace.folder
    workspace.stop = threading.Event()
    workspace.close()
    assert workspace.stop.is_set() and not folder.exists()


def test_class_picker_is_disabled_with_a_reason_for_unconditional_models(tiny_checkpoints):
    shelf = Shelf(tiny_checkpoints)
    v1 = common.class_picker_for(shelf, "v1", None, 3)
    assert v1.interactive is False and "ignores the class: it is not class-conditional" in v1.info
    v3 = common.class_picker_for(shelf, "v3", None, 3)
    assert v3.interactive is True and v3.value == 3
    unknown = common.class_picker_for(shelf, "nope", None, 3)
    assert unknown.interactive is False and "unknown model" in unknown.info


def test_data_sets_fall_back_to_mnist_5k_with_a_notice(monkeypatch, tmp_path):
    real = pixelar.load_dataset

    def offline(name, root):
        if name == "mnist":
            raise pixelar.DataUnavailable("could not be downloaded (no network)")
        return real(name, root)

    monkeypatch.setattr(pixelar, "load_dataset", offline)
    data_sets = DataSets(tmp_path)
    dataset, notice = data_sets.load("mnist")
    assert dataset.name == "mnist-5k" and len(dataset.train) == 4500
    assert notice == "**mnist** could not be loaded or downloaded here, so this uses **mnist-5k** instead."
    again, no_notice = data_sets.load("mnist-5k")
    assert again is dataset and no_notice is None
    with pytest.raises(ValueError, match="unknown data set"):
        data_sets.load("cifar")


def test_the_training_speed_is_measured_per_model_shape(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "MEASURE_SECONDS", 0.5)
    throughput = Throughput(DataSets(tmp_path))
    seed_shape, wide = Shape(28, 16), Shape(84, 16)
    assert throughput.rate("v3", seed_shape, server_busy=True) is None  # never measured while a run trains
    assert throughput.rate("v3", seed_shape, server_busy=False) > 0
    assert throughput.rate("v3", wide, server_busy=False) > 0 and set(throughput.rates) == {("v3", seed_shape), ("v3", wide)}
    # images, not pixels: a V4 image is 784 predictions, so its rate is hundreds of times lower (/10 leaves room for
    # a half-second measurement on a busy machine; counted in pixels it would be higher than V3s)
    assert throughput.rate("v4", Shape(784, 16), server_busy=False) < throughput.rates[("v3", seed_shape)] / 10
    assert 0 < throughput.check_seconds[("v3", wide)] < 60  # one held-out check: 20 images scored, 10 drawn
    throughput.check_seconds[("v3", wide)] = 1.0
    ran = pixelar.TrainResult(steps=10, samples_seen=5120, seconds=4.0, device="cpu", held_out_nll=1.0, stopped=False,
                              history=[])
    throughput.record(Plan.check("v3", "mnist-5k", 10, 100, None, wide), ran)  # not the presets' batch size: ignored
    assert throughput.rates[("v3", wide)] != 5120 / 3.0
    throughput.record(Plan.check("v3", "mnist-5k", 10, 512, None, wide), ran)
    assert throughput.rates[("v3", wide)] == 5120 / 3.0  # 4 s less one check (at the end; the first is before the clock)


def test_an_estimate_counts_the_held_out_checks():
    assert run_seconds(400, 10, 100.0) == 40.0
    assert run_seconds(400, 10, 100.0, check_seconds=1.0) == 40.0 + 2 + 7  # the first, every 50 steps but the last, the last


def test_a_model_of_another_shape_says_so_in_the_pickers(tmp_path):
    workspace = Workspace()
    workspace.add(pixelar.build_model("v3", context=7, k=8))
    workspace.add(pixelar.build_model("v4"))
    labels = [label for label, _ in Shelf(tmp_path).choices(workspace)]
    assert labels == ["my-v3-1 · trained here · context 7 · K 8", "my-v4-2 · trained here · K 16"]  # K always: bits compare only at the same K


def test_budgets_and_their_expected_times():
    assert BUDGETS["long"].steps * BUDGETS["long"].batch_size >= SEED_RECIPE_SAMPLES
    labels = [label for label, _ in budget_choices("v3", 12_500)]
    assert labels[0] == "Quick · 0.512M samples · ≈ 41 s"
    assert labels[2].endswith("100M samples · ≈ 2.2 h")
    assert [label for label, _ in budget_choices("v1", None)][0] == "Quick · 0.512M samples"
    v4 = [label for label, _ in budget_choices("v4", 50)]  # V4 counts whole images, about 50 a second on one core
    assert v4[0] == "Quick · 288 images · ≈ 6 s"
    assert v4[2] == "Long · 80,000 images · ≈ 26 min 40 s"
    assert format_seconds(45) == "45 s" and format_seconds(600) == "10 min 00 s" and format_seconds(float("inf")) == "?"


def test_a_plan_checks_the_train_tab_inputs():
    plan = Plan.check("v2", "mnist-5k", 800, 256, 0.002)
    assert plan.samples == 800 * 256 and plan.config.eval_every == 100 and plan.config.learning_rate == 0.002
    assert plan.shape == Shape(28, 16)
    wide = Plan.check("v3", "mnist-5k", 10, 8, None, Shape.check("v3", 84.0, 8))
    assert wide.shape.build("v3").config.context == 84 and wide.shape.build("v3").k == 8
    assert Shape.check("v4", 7, 16) == Shape(784, 16)  # V4 always sees the whole past
    for shape, message in [(("v3", 0, 16), "Context length must be a whole number from 1 to 84, got 0"),
                           (("v3", 28, 300), "K bins must be a whole number from 2 to 256, got 300"),
                           (("v3", 28, 3.7), "^K bins must be a whole number from 2 to 256, got 3.7$"),
                           (("v3", 7.5, 16), "Context length"), (("v1", 28, None), "the box is empty")]:
        with pytest.raises(ValueError, match=message):
            Shape.check(*shape)
    for bad, message in [
        (("v9", "mnist-5k", 10, 8, None), "unknown model 'v9'"),
        (("v3", "cifar", 10, 8, None), "unknown data set 'cifar'"),
        (("v3", "mnist-5k", None, 8, None), "whole numbers"),
        (("v3", "mnist-5k", 10, 0, None), "batch size must be a whole number from 1"),
        (("v3", "mnist-5k", 10, 8, 5.0), "learning rate must be above 0 and at most 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            Plan.check(*bad)


def test_the_train_tab_refuses_a_batch_beyond_the_models_memory_budget():
    """Issue 15: a V4 batch of 8192 images (50 MB each in training) was accepted without a tick."""
    from demo.train_tab import batch_info

    with pytest.raises(ValueError, match=r"batch size must be at most 60 images for this v4 \(about 50 MB each"):
        Plan.check("v4", "mnist-5k", 10, 8192, None)
    assert Plan.check("v4", "mnist-5k", 10, 60, None).config.batch_size == 60
    assert Plan.check("v3", "mnist-5k", 10, 8192, None).config.batch_size == 8192  # 34 kB a pair: the box's own cap
    assert batch_info("v4") == "1 to 60" and batch_info("v3") == "1 to 8,192"


def run_to_the_end(run: TrainingRun, stop_after_events: int | None = None):
    events, samples, over = [], [], False
    run.start()
    while not over:
        new_events, new_samples, over = run.drain(timeout=5)
        events += new_events
        samples += new_samples
        if stop_after_events is not None and len(events) >= stop_after_events:
            run.stop.set()
    run.thread.join()
    return events, samples


def test_a_training_run_reports_events_and_samples_at_each_check():
    dataset = pixelar.load_dataset("mnist-5k")
    config = pixelar.TrainConfig(steps=30, batch_size=64, eval_every=10, eval_images=4, report_seconds=0.05)
    torch.manual_seed(0)  # the starting weights: the loss must fall from them, whatever the test order
    run = TrainingRun(pixelar.build_model("v3", hidden=16), dataset, config, threading.Event())
    events, samples = run_to_the_end(run)
    assert run.error is None and run.result.steps == 30 and not run.result.stopped
    assert run.start_held_out is not None and run.start_held_out > run.result.held_out_nll
    assert [step for step, _ in samples] == [0, 10, 20, 30]
    assert all(len(trace) == 10 for _, trace in samples)
    assert events[-1].finished and run.model.training is False


def test_stopping_a_run_keeps_what_it_trained():
    dataset = pixelar.load_dataset("mnist-5k")
    config = pixelar.TrainConfig(steps=100_000, batch_size=32, eval_every=0, eval_images=2, report_seconds=0.01)
    run = TrainingRun(pixelar.build_model("v1", hidden=16), dataset, config, threading.Event())
    events, _ = run_to_the_end(run, stop_after_events=3)
    assert run.result.stopped and 0 < run.result.steps < 100_000
    assert events[-1].stopped
    trace = pixelar.sample(run.model, 1, seed=0)  # usable at once
    assert trace.tokens.shape == (1, 784)


def test_the_training_slot_serves_in_order_and_tells_each_their_place():
    slot = TrainingSlot(max_minutes=5)
    first, second, third = object(), object(), object()
    assert slot.join(first) == 0 and slot.begin(first) and not slot.begin(first)  # a free slot; one stream only
    assert slot.join(second) == 1 and slot.join(third) == 2 and slot.waiting() == 3
    assert slot.poll(third) == 2 and slot.poll(second) == 1  # the slot is busy: nobody moves
    slot.leave(first)
    assert slot.poll(third) == 2  # the slot is free, but second is first in line
    assert slot.poll(second) == 0 and slot.holds(second) and slot.poll(third) == 1  # second's turn; third moved up
    slot.leave(third)  # gave up: out of the line
    assert slot.poll(third) is None and slot.waiting() == 1
    with pytest.raises(ValueError, match="positive number of minutes"):
        TrainingSlot(max_minutes=0)


def test_a_waiting_run_whose_page_stops_asking_is_dropped():
    now = [0.0]
    slot = TrainingSlot(max_minutes=5, stale_seconds=20, clock=lambda: now[0])
    running, closed, open_page = object(), object(), object()
    slot.join(running), slot.join(closed), slot.join(open_page)
    for now[0] in (10.0, 19.0, 28.0):
        assert slot.poll(open_page) in (1, 2)  # only this page keeps asking
    assert slot.poll(closed) is None and slot.poll(open_page) == 1 and slot.waiting() == 2


def test_a_training_line_holds_no_threads_has_a_cap_and_starts_runs_in_order():
    """Issue 15: each waiting run held a worker thread (110 waiting: sampling 100x slower). Now a waiting run is a
    ticket in the slot; tiny real runs take the slot in the order their users pressed Start."""
    dataset = pixelar.load_dataset("mnist-5k")
    config = pixelar.TrainConfig(steps=5, batch_size=32, eval_every=0, eval_images=2)
    slot = TrainingSlot(max_minutes=5, max_waiting=20)
    tickets = [threading.Event() for _ in range(21)]
    assert slot.join(tickets[0]) == 0
    threads = threading.active_count()
    assert [slot.join(t) for t in tickets[1:]] == list(range(1, 21))
    assert threading.active_count() == threads  # 20 runs waiting, not one thread among them
    with pytest.raises(ValueError, match=r"The training line is full \(20 runs waiting, each at most 5 minutes\)"):
        slot.join(threading.Event())
    started = []
    for _ in range(3):
        holder = next(t for t in tickets if slot.holds(t))
        assert slot.begin(holder)
        started.append(tickets.index(holder))
        run = TrainingRun(pixelar.build_model("v1", hidden=8), dataset, config, holder)
        run_to_the_end(run)
        assert run.result.steps == 5
        slot.leave(holder)
        for t in reversed(tickets):  # every waiting page asks, the last in line first
            slot.poll(t)
    assert started == [0, 1, 2] and slot.holds(tickets[3]) and slot.waiting() == 18


def test_a_run_past_the_cap_stops_and_keeps_what_it_trained():
    dataset = pixelar.load_dataset("mnist-5k")
    config = pixelar.TrainConfig(steps=10**6, batch_size=32, eval_every=0, eval_images=4)
    run = TrainingRun(pixelar.build_model("v1", hidden=8), dataset, config, threading.Event(), max_seconds=1.0)
    run.start()
    run.thread.join(timeout=120)
    assert run.capped and run.result.stopped and 0 < run.result.steps < 10**6


ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=8), st.sampled_from([10**400, -10**400, 2**63]))  # no float holds 10**400


@hypothesis_settings(max_examples=300, deadline=None)
@given(ANYTHING)
def test_every_check_returns_a_valid_value_or_names_its_field(value):
    for check, field in [(common.check_temperature, "Temperature"), (common.check_count, "Samples"),
                         (common.check_seed, "Seed"), (common.check_top_k, "Top-k"), (common.check_top_p, "Top-p"),
                         (common.check_learning_rate, "Learning rate")]:
        try:
            result = check(value)
        except ValueError as error:
            assert str(error).startswith(f"{field} must be"), error
            assert len(str(error)) < 200, error  # a 400-digit number is not echoed whole
        else:
            assert result is None or isinstance(result, (int, float)) and not isinstance(result, bool)
            if check is common.check_temperature:
                assert 0.1 <= result <= 2.0 and result == float(value)  # accepted as given, never clamped


def test_a_waiting_run_hears_its_place_and_the_cap():
    from demo.train_tab import waiting_line

    assert waiting_line(1, TrainingSlot(max_minutes=20)).startswith(
        "**Waiting for another user's training to finish**: 1 run ahead of yours, each at most 20 minutes.")
    assert "2 runs ahead of yours." in waiting_line(2, TrainingSlot(max_minutes=None))


def test_bits_per_pixel_are_ranked_only_among_models_with_the_same_k():
    from demo.explore_tab import fewest_bits
    from pixelar.experiments import Surprise

    flat = np.zeros((28, 28))
    maps = {"V3": Surprise(flat, 300.0, 0.38, 16), "V4": Surprise(flat, 320.0, 0.41, 16), "coarse": Surprise(flat, 100.0, 0.13, 4)}
    text = fewest_bits(maps)
    assert "Fewest bits of the 2 models at K 16: **V3**" in text  # not "coarse", whose 4-bin bits are cheaper
    assert "the only model at K 4: **coarse**" in text and "log₂ 4 = 2.00" in text and "log₂ 16 = 4.00" in text
    assert "do not compare" in text
    assert "do not compare" not in fewest_bits({"V3": maps["V3"], "V4": maps["V4"]})


def test_the_expected_times_come_back_once_the_server_stops_training(tmp_path):
    """Issue 20.2: "Expected times appear when the server is not training." stayed after the run had ended. While a
    run trains, the estimate starts the recheck timer; its next tick after the run gives the times and stops it."""
    from demo.serving import Batcher
    from demo.train_tab import Trainer

    trainer = Trainer(DataSets(tmp_path), TrainingSlot(), Batcher())
    trainer.busy.set()
    [(_, text, _, timer)] = trainer.describe_budget("v3", 1000, 512, 28, 16)
    assert text.endswith("Expected times appear when the server is not training.") and timer.active
    trainer.busy.clear()  # the run ended; the speed it measured (or a fresh measurement) is known
    trainer.throughput.rates[("v3", Shape(28, 16))] = 12_500.0
    [(budget, text, _, timer)] = trainer.describe_budget("v3", 1000, 512, 28, 16)
    assert "This run: 1,000 steps × 512 (image, pixel) pairs ≈ **41 s**" in text and "not training" not in text
    assert not timer.active and budget.choices[0][0].endswith("≈ 41 s")
    [(_, text, _, timer)] = trainer.describe_budget("v3", 1000, 512, 28, 3.7)
    assert text == "K bins must be a whole number from 2 to 256, got 3.7" and not timer.active


def test_the_train_tab_gives_the_blind_guess_for_any_k():
    """Issue 20.1: K is a training setting, so the intro gives log₂ K, with 4.0 as the K 16 example only."""
    from demo.train_tab import INTRO

    assert "a blind guess is log₂ K bits (4.0 at K 16, the dashed line)" in INTRO and "over 16 bins" not in INTRO


@pytest.mark.slow
def test_the_expected_time_of_a_run_is_within_a_quarter_of_the_real_one(tmp_path):
    """Issue 20.8: Quick V3 promised ~35 s and took 68 s (its held-out checks were not counted). Measured as the app
    measures (Throughput, in this thread), then a real run of about 12 s timed from start to its last update."""
    throughput = Throughput(DataSets(tmp_path))
    shape = Shape(28, 16)
    rate = throughput.rate("v2", shape, server_busy=False)
    batch_size = BUDGETS["quick"].batch_size
    plan = Plan.check("v2", "mnist-5k", max(50, int(12 * rate / batch_size)), batch_size, None, shape)
    data, _ = DataSets(tmp_path).load("mnist-5k")
    run = TrainingRun(shape.build("v2"), data, plan.config, threading.Event())
    started = time.perf_counter()
    run.start()
    while not run.drain(1.0)[2]:
        pass
    took = time.perf_counter() - started
    expected = throughput.expected_seconds(plan)
    assert run.error is None and abs(expected - took) <= 0.25 * took, (expected, took)
