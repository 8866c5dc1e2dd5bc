"""One name, one meaning: the app's limits are the core's, narrowed (``demo.common.APP_*``), and every whole number
taken from outside, in the core or the app, goes through ``pixelar.inputs``: 3.7, True, 10**400 and None are
refused with a message that names the field, never truncated or clamped."""
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from demo import common, player
from demo.services import Services
from pixelar import experiments, inputs, sampling
from pixelar.data import Split
from pixelar.influence import influence
from helpers import tiny

NOT_WHOLE = st.one_of(
    st.none(), st.booleans(), st.just(3.7), st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not float(x).is_integer()),
    st.sampled_from([10**400, -10**400, 2**63, 2**31]), st.integers(min_value=10**6), st.integers(max_value=-1),
    st.text(max_size=4), st.lists(st.integers(), max_size=2),
)


def test_the_apps_bounds_are_within_the_cores():
    low, high = common.APP_TEMPERATURE_RANGE
    assert sampling.TEMPERATURE_RANGE[0] <= low <= high <= sampling.TEMPERATURE_RANGE[1]
    assert (low, high) != sampling.TEMPERATURE_RANGE  # narrowed: the two names do not mean the same
    assert 1 <= common.APP_MAX_SAMPLES <= sampling.MAX_SAMPLES and common.APP_MAX_SAMPLES != sampling.MAX_SAMPLES
    assert common.SEED_MAX == sampling.SEED_MAX
    assert not hasattr(common, "TEMPERATURE_RANGE") and not hasattr(common, "MAX_SAMPLES")


def test_the_players_reshape_controls_use_the_apps_bounds():
    t = re.search(r'class="px-t" type="range" min="([^"]+)" max="([^"]+)"', player.TEMPLATE)
    k = re.search(r'class="px-k" type="number" min="1" max="([^"]+)"', player.TEMPLATE)
    assert (float(t[1]), float(t[2])) == common.APP_TEMPERATURE_RANGE
    assert int(k[1]) == common.APP_TOP_K_MAX


def test_bounds_that_would_widen_the_cores_are_refused():
    with pytest.raises(ValueError, match="not within the core's"):
        sampling.check_temperature(1.0, "Temperature", (0.1, 20_000.0))
    with pytest.raises(ValueError, match="not within the core's"):
        sampling.check_count(3, "Number of samples", sampling.MAX_SAMPLES + 1)
    with pytest.raises(ValueError, match="not within the core's"):
        inputs.within((2.0, 1.0), (0, 10), "T")


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**6, 10**6))
def test_the_apps_temperature_is_the_cores_check_narrowed(value):
    low, high = common.APP_TEMPERATURE_RANGE
    try:
        t = common.check_temperature(value)
    except ValueError as error:
        assert str(error).startswith("Temperature must be a number from 0.1 to 2, got")
        assert not (math.isfinite(value) and low <= value <= high)
    else:
        assert t == value and low <= t <= high
        assert sampling.check_temperature(value) == t  # what the app accepts, the core accepts


# Every whole number the core and the app take from outside, as (check, the field its message names).
def _split():
    return Split(torch.zeros(5, 784, dtype=torch.uint8), torch.arange(5) % 2)


WHOLE_CHECKS = [  # (check, field, the whole numbers it accepts, whether None means "the default")
    (lambda v: sampling.check_count(v), "number of samples", (1, 1024), False),
    (lambda v: sampling.check_seed(v), "seed", (0, 2**31 - 1), False),
    (lambda v: sampling.sample(tiny("v1", hidden=8), 1, seed=v), "seed", (0, 2**31 - 1), True),
    (lambda v: sampling.sample(tiny("v1", hidden=8), v, seed=1), "number of samples", (1, 1024), False),
    (lambda v: sampling.sample(tiny("v1", hidden=8), 1, top_k=v, seed=1), "top-k", (1, 16), True),
    (lambda v: influence(tiny("v1", hidden=8), np.zeros(784, dtype=np.int64), 0, v), "step", (0, 783), False),
    (lambda v: influence(tiny("v3", hidden=8), np.zeros(784, dtype=np.int64), v, 5), "label", (0, 9), False),
    (lambda v: experiments.real_image(_split(), v), "image number", (0, 4), False),
    (lambda v: experiments.random_index_of_class(_split(), v), "class", (0, 2**31 - 1), False),
    (lambda v: common.check_count(v), "Samples", (1, 64), False),
    (lambda v: common.check_whole(v, "Steps", 1, 10**6), "Steps", (1, 10**6), False),
]


@pytest.mark.parametrize("check, field, accepted, none_is_default", WHOLE_CHECKS,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(WHOLE_CHECKS)])
@settings(max_examples=30, deadline=None)
@given(value=NOT_WHOLE)
def test_a_whole_number_from_outside_that_is_not_one_is_refused_naming_its_field(check, field, accepted,
                                                                                   none_is_default, value):
    if type(value) is int and accepted[0] <= value <= accepted[1] or value is None and none_is_default:
        return  # a valid value, drawn by chance
    with pytest.raises(ValueError) as refused:
        check(value)
    message = str(refused.value)
    assert message.startswith(f"{field} must be"), message
    assert len(message) < 200, message  # a 400-digit number is not echoed whole


@pytest.mark.parametrize("check", [lambda: influence(tiny("v1", hidden=8), np.zeros(784, dtype=np.int64), 0, 3.7),
                                   lambda: experiments.real_image(_split(), 3.7)])
def test_3_point_7_is_refused_not_truncated_to_3(check):
    with pytest.raises(ValueError, match=r"must be a whole number from 0 to \d+, got 3.7"):
        check()


def test_an_integral_float_is_a_whole_number():
    a = influence(tiny("v1", hidden=8), np.zeros(784, dtype=np.int64), 0, 30.0)
    b = influence(tiny("v1", hidden=8), np.zeros(784, dtype=np.int64), 0, 30)
    assert np.array_equal(a, b)


@settings(max_examples=100, deadline=None)
@given(value=NOT_WHOLE | st.just(0.0))
def test_the_pages_panel_and_step_go_through_the_same_check(value):
    app = Services()
    key = app.register(tiny("v1", hidden=8), [np.zeros(784, dtype=np.int64)], 0)
    for ask, field in [({"id": key, "panel": value, "step": 5}, "panel"), ({"id": key, "panel": 0, "step": value}, "step")]:
        answer = app.where_it_looked(ask)
        if value == 0 and not isinstance(value, bool):
            assert "map" in answer
        else:
            assert answer["error"].startswith(f"where it looked: {field} must be a whole number from 0 to"), answer


@settings(max_examples=100, deadline=None)
@given(value=st.one_of(st.none(), st.booleans(), st.sampled_from([10**400, 2.0, -0.5, float("nan")]),
                      st.text(alphabet="ab x", max_size=3)))
def test_temperature_and_top_p_refuse_what_is_not_a_number_in_range(value):
    for check, field in [(sampling.check_temperature, "temperature"), (sampling.check_top_p, "top-p")]:
        if check is sampling.check_temperature and value == 2.0:
            continue
        with pytest.raises(ValueError, match=f"^{field} must be a number"):
            check(value)


class _MeasuredSpeed:
    """A stand-in for ``Throughput``: every shape already measured at 50,000 samples/s, a check at a second."""

    rates, check_seconds = {}, {}

    def rate(self, kind, shape, busy):
        self.rates[(kind, shape)], self.check_seconds[(kind, shape)] = 50_000.0, 1.0
        return 50_000.0


@pytest.mark.parametrize("steps, said", [(3.7, "Steps must be a whole number from 1 to 1000000, got 3.7"),
                                         (True, "Steps must be a whole number from 1 to 1000000, got True"),
                                         (10**400, "Steps must be a whole number from 1 to 1000000, got a number of"),
                                         (None, "Enter steps and a batch size"), (200, "This run: 200 steps")])
def test_the_train_tabs_estimate_takes_steps_through_the_whole_number_check(tmp_path, steps, said):
    from demo.data import DataSets
    from demo.serving import Batcher
    from demo.train_tab import Trainer
    from demo.training import TrainingSlot

    trainer = Trainer(DataSets(tmp_path), TrainingSlot(), Batcher(), throughput=_MeasuredSpeed())
    *_, (_, text, _, _) = trainer.describe_budget("v3", steps, 64, 28, 16)
    assert said in text, text
