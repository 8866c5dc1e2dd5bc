"""Random argument values for ``sample``, ``evaluate`` and the CLI: a result or a clear error, never anything else."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

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


option_values = st.one_of(st.integers(-5, 40).map(str), st.floats(-2, 3).map(str), st.sampled_from(["", "x", "nan", "inf", "1e9", "-0"]))
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
