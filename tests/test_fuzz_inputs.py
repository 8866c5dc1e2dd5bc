"""Random argument values for ``sample``, ``evaluate`` and the CLI: a result or a clear error, never anything else."""
import asyncio
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from pixelar import Trace, evaluate, load_dataset, sample, save_checkpoint
from pixelar.cli import main
from helpers import tiny

hostile = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5), st.lists(st.integers(-3, 20) | st.floats(-1, 20), max_size=4),
)
nearly_right = {
    "n": st.integers(-2, 6) | st.floats(-1, 6) | hostile,
    "labels": st.integers(-2, 12) | st.lists(st.integers(-1, 11) | st.floats(0, 10), max_size=5) | hostile,
    "temperature": st.floats(-1, 5) | hostile,
    "seed": st.integers(-5, 2**32) | st.floats(-1, 10) | hostile,
    "prefix": st.lists(st.integers(-1, 4) | st.floats(0, 4), max_size=30) | hostile,
    "forced": st.dictionaries(st.integers(-2, 800) | st.floats(0, 800), st.integers(-1, 5) | st.floats(0, 4), max_size=3) | hostile,
    "top_k": st.integers(-1, 6) | hostile,
    "top_p": st.floats(-0.5, 1.5) | hostile,
    "precision": st.sampled_from(["auto", "fp32", "bf16", "fp16", ""]) | hostile,
}


@pytest.fixture(scope="module")
def v3():
    return tiny("v3", hidden=8, k=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({}, optional=nearly_right))
def test_sample_gives_a_trace_or_a_value_error(v3, kwargs):
    try:
        trace = sample(v3, **kwargs)
    except ValueError as error:
        assert str(error)
        return
    assert isinstance(trace, Trace) and trace.tokens.min() >= 0 and trace.tokens.max() < 4
    assert np.isfinite(trace.probs).all() and (trace.chosen_prob > 0).all()


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist-5k")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_images=st.integers(-3, 12) | hostile, precision=st.sampled_from(["fp32", "auto", "x"]))
def test_evaluate_gives_a_number_or_a_value_error(v3, mnist5k, max_images, precision):
    try:
        nll = evaluate(v3, mnist5k.held_out, max_images=max_images, precision=precision)
    except ValueError as error:
        assert str(error)
        return
    assert math.isfinite(nll) and nll > 0


option_values = st.one_of(st.integers(-5, 40).map(str), st.floats(-2, 3).map(str),
                          st.sampled_from(["", "x", "nan", "inf", "1e9", "-0", "1" * 401, "1e400"]))
sample_options = ["--n", "--digit", "--temperature", "--seed", "--top-k", "--top-p", "--scale", "--columns", "--precision"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.lists(st.tuples(st.sampled_from(sample_options), option_values), max_size=4))
def test_the_cli_answers_every_argument_with_a_result_or_one_line(v3, tmp_path, capsys, options):
    checkpoint = save_checkpoint(v3, tmp_path / "v3.safetensors")
    argv = ["sample", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "grid.png")]
    for option, value in options:
        argv += [option, value]
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own refusal
        code = exit.code
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# ---- every event of the app, called as a script can call it (by number, with any JSON) ----

GIANT = 10**400
app_values = st.one_of(
    st.none(), st.booleans(), st.sampled_from([GIANT, -GIANT, 2**63, 1.5, 0.5, -1, 0, 3, 16, 1e308, "abc", "", "v3", "v9"]),
    st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
    st.lists(st.integers(-3, 20) | st.none(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers() | st.none(), max_size=2),
)


@pytest.fixture(scope="module")
def app(tiny_checkpoints, tmp_path_factory):
    """The whole app, built in this process (no server): its events are called through Gradio's own path."""
    from app import build_app
    from demo import train_tab

    measured = train_tab.Throughput.rate
    train_tab.Throughput.rate = lambda self, kind, shape, busy: 50_000.0  # no speed measurement per drawn shape
    yield build_app(tiny_checkpoints, tmp_path_factory.mktemp("data"), data_dir=tmp_path_factory.mktemp("board"))
    train_tab.Throughput.rate = measured  # other test files measure it for real


LOOP = asyncio.new_event_loop()  # one for every call: a loop per call costs 0.2 s in thread start-up


def run_event(app, block_fn, inputs, event_data, state):
    """One call of an event in one session as the queue makes it (preprocess, the function, postprocess), to its
    last update."""
    from gradio.events import EventData

    async def whole():
        iterator = None
        while True:
            result = await app.process_api(block_fn, inputs, state, event_data=EventData(None, event_data),
                                           iterator=iterator, session_hash="fuzz")
            iterator = result.get("iterator")
            if not result.get("is_generating") or iterator is None:
                return result

    return LOOP.run_until_complete(whole())


def check_event(app, block_fn, inputs, event_data, state):
    """A result or a ``gr.Error`` with a message; never another exception, nor an unexpected error's message."""
    from gradio.exceptions import Error

    try:
        run_event(app, block_fn, inputs, event_data, state)
    except Error as error:
        assert "Something went wrong" not in error.message, (block_fn.name, error.message)
    except Exception as error:
        raise AssertionError(f"{block_fn.name} raised {type(error).__name__}: {error}"[:500]) from error


LISTED = [None, True, GIANT, -GIANT, 1.5, math.nan, "abc", "", [1, None], {"index": GIANT, "value": None}]


def test_every_event_of_the_app_answers_hostile_values_with_a_message(app):
    """Giant integers, None, wrong types, fractions in every input of every event (named or not, issue 15 point 9):
    a result, or a ``gr.Error`` that names what is wrong; never another exception (a server traceback) and never
    the "Something went wrong" of an unexpected error. The listed values first, in every input at once, then
    Hypothesis mixes them."""
    from gradio.state_holder import SessionState

    events = [fn for fn in app.fns.values() if fn.fn is not None]
    assert len(events) >= 20  # every tab's events, the unnamed ones too
    for value in LISTED:
        state = SessionState(app)
        for block_fn in events:
            check_event(app, block_fn, [None if block.stateful else value for block in block_fn.inputs], value, state)

    @settings(max_examples=10, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def mixed(data):
        state = SessionState(app)
        for block_fn in events:
            inputs = [None if block.stateful else data.draw(app_values) for block in block_fn.inputs]
            check_event(app, block_fn, inputs, data.draw(app_values), state)

    mixed()


NUMBER_OPTIONS = {
    "train": ["--steps", "--batch-size", "--minutes", "--lr", "--weight-decay", "--k", "--hidden", "--context", "--dropout",
              "--channels", "--layers", "--seed", "--eval-every", "--eval-images", "--final-eval-images", "--save-every"],
    "sample": sample_options[:-1],  # all but --precision, a choice
    "evaluate": ["--images", "--per-class", "--seed"],
    "classifier": ["--epochs", "--seed"],
}
REQUIRED = {"train": ["--out", "x.safetensors"], "sample": ["--checkpoint", "x.safetensors"],
            "evaluate": ["--checkpoint", "x.safetensors"], "classifier": ["--out", "x.safetensors"]}


@pytest.mark.parametrize("value", ["1" * 401, "-" + "9" * 401, "1.5", "nan", "abc", "1e400"])
def test_every_number_option_refuses_a_bad_value_in_one_line_naming_it(capsys, value):
    """A 401-digit integer, a fraction or a word in any number option: exit status 2 and one line naming the option,
    before anything is loaded (issue 15, point 9)."""
    for command, options in NUMBER_OPTIONS.items():
        for option in options:
            if value == "1.5" and option in ("--minutes", "--lr", "--weight-decay", "--dropout", "--temperature", "--top-p"):
                continue  # a fraction is a fine real number
            with pytest.raises(SystemExit) as exit:
                main([command, *REQUIRED[command], f"{option}={value}"])
            err = capsys.readouterr().err
            assert exit.value.code == 2 and len(err.strip().splitlines()) == 1 and option in err, (command, option, err)
            assert len(err) < 300, err


def events_named(app, name: str) -> list:
    return [fn for fn in app.fns.values() if fn.name == name]


def refusal(app, block_fn, inputs) -> str:
    """The message of the ``gr.Error`` an event answers ``inputs`` with, through Gradio's own path."""
    from gradio.exceptions import Error
    from gradio.state_holder import SessionState

    with pytest.raises(Error) as refused:
        run_event(app, block_fn, inputs, None, SessionState(app))
    return refused.value.message


def test_the_train_tab_names_a_fraction_of_a_bin_and_an_empty_learning_rate(app):
    """Issue 20.7 a and c: K 3.7 is refused (not rounded), naming the K bins box; an empty learning rate box is said
    to be empty, not "got None"."""
    [start] = events_named(app, "on_start")
    assert [block.label for block in start.inputs][6].startswith("K bins")
    good = ["v3", "mnist-5k", 10, 8, 0.001, 28, 16, False, None]
    assert refusal(app, start, good[:6] + [3.7] + good[7:]) == "K bins must be a whole number from 2 to 256, got 3.7"
    for empty in (None, ""):
        message = refusal(app, start, good[:4] + [empty] + good[5:])
        assert message == "Learning rate must be a number above 0 and at most 1; the box is empty"


def test_the_train_tabs_estimate_is_asked_again_by_its_recheck_timer(app):
    """Issue 20.2: the estimate that waits for the server's run to end is refreshed by a timer it starts and stops."""
    [estimate] = [fn for fn in events_named(app, "describe_budget") if any(e == "tick" for _, e in fn.targets)]
    [timer] = [app.blocks[block] for block, event in estimate.targets if event == "tick"]
    assert timer in estimate.outputs and timer.value == 5.0 and not timer.active


def test_explore_shows_one_class_for_the_image_and_checks_a_typed_number_once(app):
    """Issue 20.7 d and e: the class box follows the image shown (held-out #0 is a 0; the box said 3), and a
    typed image number is checked when the box is left, not at each keystroke (600 on the way to 6000)."""
    from gradio.state_holder import SessionState
    from pixelar import experiments

    shows = events_named(app, "on_image")
    assert len(shows) == 2  # after the image number box or the model, and after the random pick
    triggers = {id(show): [(getattr(app.blocks.get(block), "elem_id", None), event) for block, event in show.targets]
                for show in shows + events_named(app, "on_surprise")}
    assert not any(("explore-index", "change") in found for found in triggers.values())
    [typed] = [show for show in shows if ("explore-index", "blur") in triggers[id(show)]]
    class_box = [i for i, block in enumerate(typed.outputs) if block.elem_id == "explore-class"]
    assert class_box and all(show.outputs == typed.outputs for show in shows)
    held_out = load_dataset("mnist-5k").held_out
    first_of = {}  # the first image of each class (the split is in class order): #0, a 0, and the others
    for index in range(0, len(held_out), 25):
        first_of.setdefault(experiments.real_image(held_out, index)[1], index)
    assert len(first_of) == 10
    for label, index in first_of.items():
        data = run_event(app, typed, ["v3", index, None], None, SessionState(app))["data"]
        assert data[class_box[0]] == label and f"**#{index}**" in data[1] and f"a{'n' * (label == 8)} {label}." in data[1]
