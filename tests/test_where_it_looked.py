"""The step player's "where it looked" server function: the map it sends is ``pixelar.influence`` of the registered
trace, every bad ask gets a message (never an exception), and the registry forgets the least recently used."""
import base64
import math
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pixelar
from demo import serving, where_it_looked as looked
from demo.services import Services
from demo.step_tab import Generation, player_value
from demo.player import Facts
from helpers import tiny

APP = Services()  # as ``app.build_app`` builds them: one batcher and one registry for the whole app

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def tiny_v4():
    return pixelar.build_model("v4", channels=8, head=16).eval()


@pytest.fixture(scope="module")
def v3_and_v4():
    """A V3 trace and a V4 trace, each registered (V4 with a second, what-if panel)."""
    v3, v4 = tiny("v3"), tiny_v4()
    a = pixelar.sample(v3, 1, labels=7, seed=1)
    b = pixelar.sample(v4, 1, labels=7, seed=2)
    other = pixelar.sample(v4, 1, labels=7, seed=2, prefix=b.tokens[:, :300], forced={300: 15})
    return {"v3": (v3, a, APP.register(v3, [a.tokens[0]], 7)),
            "v4": (v4, b, APP.register(v4, [b.tokens[0], other.tokens[0]], 7), other)}


def received(answer: dict) -> np.ndarray:
    """The map as the page decodes it, back in the model's units."""
    assert set(answer) == {"map", "max", "ms", "panel", "step"}, answer
    scaled = np.frombuffer(base64.b64decode(answer["map"]), dtype="<f2").astype(np.float64)
    assert scaled.shape == (784,) and scaled.min() >= 0 and scaled.max() <= 1
    return scaled * answer["max"]


@pytest.mark.parametrize("step", [0, 1, 27, 28, 400, 783])
def test_the_map_is_pixelar_influence_of_the_registered_trace(v3_and_v4, step):
    for name in ("v3", "v4"):
        model, trace, key = v3_and_v4[name][:3]
        expected = pixelar.influence(model, trace.tokens[0], 7, step).reshape(784)
        got = received(APP.where_it_looked({"id": key, "panel": 0, "step": step}))
        assert np.allclose(got, expected, rtol=2e-3, atol=1e-3 * max(expected.max(), 1e-12)), (name, step)
        assert (got[step:] == 0).all()
        if name == "v3":  # V1-V3 look only at the 28 pixels before
            assert (got[: max(0, step - 28)] == 0).all()
    got = received(APP.where_it_looked({"id": v3_and_v4["v4"][2], "panel": 0, "step": 400}))
    assert (got[: 400 - 28] > 0).any()  # V4 looks further back


def test_a_what_if_panel_gets_the_map_of_its_own_tokens(v3_and_v4):
    model, trace, key, other = v3_and_v4["v4"]
    assert (other.tokens[0] != trace.tokens[0]).any()
    for panel, tokens in ((0, trace.tokens[0]), (1, other.tokens[0])):
        got = received(APP.where_it_looked({"id": key, "panel": panel, "step": 500}))
        expected = pixelar.influence(model, tokens, 7, 500).reshape(784)
        assert np.allclose(got, expected, rtol=2e-3, atol=1e-3 * expected.max())


def test_nothing_before_the_first_pixel_sends_an_all_zero_map(v3_and_v4):
    answer = APP.where_it_looked({"id": v3_and_v4["v3"][2], "panel": 0, "step": 0})
    assert answer["max"] == 0 and not received(answer).any()


@settings(max_examples=150, deadline=None)
@given(ask=json_values)
def test_any_json_the_page_could_send_gets_an_answer_never_an_exception(ask):
    answer = APP.where_it_looked(ask)
    assert set(answer) == {"error"} and isinstance(answer["error"], str) and answer["error"]


@settings(max_examples=150, deadline=None)
@given(panel=json_values | st.integers(), step=json_values | st.integers(-1000, 2000), which=st.sampled_from(["v3", "v4"]))
def test_a_bad_panel_or_step_is_named_with_its_range(v3_and_v4, panel, step, which):
    key = v3_and_v4[which][2]
    panels = 1 if which == "v3" else 2
    answer = APP.where_it_looked({"id": key, "panel": panel, "step": step})
    def whole(value, high):  # as ``pixelar.inputs.whole_number`` judges: 3 and 3.0, not 3.7, True or "3"
        return (type(value) is int or type(value) is float and math.isfinite(value) and value.is_integer()) \
            and 0 <= value <= high

    if whole(panel, panels - 1) and whole(step, 783):
        assert "map" in answer
    elif not whole(panel, panels - 1):
        assert answer["error"].startswith(f"where it looked: panel must be a whole number from 0 to {panels - 1}, got")
    else:
        assert answer["error"].startswith("where it looked: step must be a whole number from 0 to 783, got")


@settings(max_examples=80, deadline=None)
@given(key=st.text(max_size=100) | json_values)
def test_an_unknown_or_malformed_id_says_so(v3_and_v4, key):
    answer = APP.where_it_looked({"id": key, "panel": 0, "step": 10})
    assert "error" in answer
    if isinstance(key, str) and 0 < len(key) <= looked.ID_MAX_LENGTH:
        assert answer["error"] == looked.EXPIRED
    else:
        assert "missing or malformed" in answer["error"]


def test_the_registry_forgets_the_least_recently_used():
    registry = looked.Registry(capacity=3)
    entry = looked.Looking(tiny("v1"), np.zeros((1, 784), dtype=np.int64), 0)
    keys = [registry.add(entry) for _ in range(3)]
    assert len(set(keys)) == 3 and all(len(k) >= 24 for k in keys)  # unguessable: 18 random bytes
    registry.get(keys[0])  # used: now the newest
    fourth = registry.add(entry)
    assert len(registry) == 3 and registry.get(keys[1]) is None
    assert all(registry.get(k) is entry for k in (keys[0], keys[2], fourth))


def test_maps_asked_together_compute_one_at_a_time_and_match(v3_and_v4):
    model, trace, key = v3_and_v4["v4"][:3]
    answers = {}

    def ask(step):
        answers[step] = APP.where_it_looked({"id": key, "panel": 0, "step": step})

    threads = [threading.Thread(target=ask, args=(step,)) for step in (100, 300, 500, 700)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for step, answer in answers.items():
        expected = APP.batcher.influence(model, trace.tokens[0], 7, step).reshape(784)
        assert np.allclose(received(answer), expected, rtol=2e-3, atol=1e-3 * expected.max())
    assert len(answers) == 4


def test_many_asks_at_once_hold_no_threads_beyond_a_short_line(v3_and_v4):
    """The server function bypasses the queue: 120 callers must not hold 120 of the server's threads, waiting
    (issue 15, point 7). While one map computes, asks past ``INFLUENCE_LINE`` are answered at once: busy."""
    key = v3_and_v4["v3"][2]
    answers = []

    def ask():
        answers.append(APP.where_it_looked({"id": key, "panel": 0, "step": 100}))

    with APP.batcher._influence_lock:  # a map computing
        threads = [threading.Thread(target=ask) for _ in range(20)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(answers) < 20 - serving.INFLUENCE_LINE and time.monotonic() < deadline:  # the ones turned away
            time.sleep(0.05)
        time.sleep(0.2)  # room for a wrong extra answer to arrive
        busy = [answer for answer in answers if "error" in answer]
    assert len(busy) == 20 - serving.INFLUENCE_LINE and all("busy" in answer["error"] for answer in busy)
    for thread in threads:
        thread.join(timeout=60)
    assert sum("map" in answer for answer in answers) == serving.INFLUENCE_LINE


def test_the_player_value_carries_the_id_of_its_maps(v3_and_v4):
    model, trace, key = v3_and_v4["v3"][:3]
    generation = Generation(trace, Facts("v3", True, "7"), settings=None)
    assert player_value(generation, "caption", looks=key)["looks"] == key


def test_the_app_keeps_at_most_256_and_an_expired_id_says_so():  # last: it pushes the fixtures' ids out
    model, tokens = tiny("v1"), np.zeros(784, dtype=np.int64)
    first = APP.register(model, [tokens], 0)
    for _ in range(looked.REMEMBERED):
        APP.register(model, [tokens], 0)
    assert len(APP.looks) == looked.REMEMBERED == 256
    assert APP.where_it_looked({"id": first, "panel": 0, "step": 5}) == {"error": looked.EXPIRED}


def test_each_app_keeps_its_own_ids_and_no_module_keeps_any():
    """The registry and batcher are built with the app (``app.build_app``), not at import: two apps in one process
    (or a test's and the app's) share nothing."""
    first, second = Services(), Services()
    key = first.register(tiny("v1"), [np.zeros(784, dtype=np.int64)], 0)
    assert "map" in first.where_it_looked({"id": key, "panel": 0, "step": 5})
    assert second.where_it_looked({"id": key, "panel": 0, "step": 5}) == {"error": looked.EXPIRED}
    assert not hasattr(looked, "REGISTRY") and not hasattr(serving, "BATCHER")
