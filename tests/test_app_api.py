"""The real app, driven through its ``generate`` API endpoint with gradio_client: every model answers, and bad
input is refused with a short message while the app keeps answering."""
import inspect
import re

import httpx
import numpy as np
import pytest
from gradio_client import Client
from hypothesis import HealthCheck, given, settings, strategies as st
from gradio_client.exceptions import AppError
from PIL import Image

import pixelar
from demo.pictures import grid as grid_picture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


def generate(client, model="v3", digit=3, temperature=1.0, n=4, seed=7, **nucleus):
    return client.predict(model, digit, temperature, n, seed, **nucleus, api_name="/generate")


def expected_size(n: int) -> tuple[int, int]:
    blank = np.zeros((n, 784), dtype=np.int64)
    trace = pixelar.Trace(blank, None, None, None, None, np.zeros(n, dtype=np.int64), 1.0, 0, 16, 28)
    return grid_picture(trace).size


def test_the_api_has_one_public_endpoint_with_the_documented_inputs(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert list(endpoints) == ["/generate"]
    names = [p["parameter_name"] for p in endpoints["/generate"]["parameters"]]
    assert names == ["model", "digit", "temperature", "n", "seed", "top_k", "top_p"]  # the two new ones optional


@pytest.mark.parametrize("model", ["v1", "v2", "v3", "v4"])
def test_every_model_generates_a_grid_of_the_right_size(client, model):
    with Image.open(generate(client, model=model, n=4)) as picture:
        assert picture.size == expected_size(4)
        assert picture.size[0] >= 600  # big enough for a projector
    with Image.open(generate(client, model=model, n=9, digit=-1)) as picture:
        assert picture.size == expected_size(9)


def test_the_same_seed_gives_the_same_grid(client):
    with Image.open(generate(client, seed=123)) as a, Image.open(generate(client, seed=123)) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_an_empty_api_seed_draws_a_new_one_each_call(client):
    """The API's seed is optional (the page's empty box without New seed each time is refused instead)."""
    with Image.open(generate(client, seed=None)) as a, Image.open(generate(client, seed=None)) as b:
        assert a.size == expected_size(4) and not np.array_equal(np.asarray(a), np.asarray(b))


BAD_INPUTS = [
    ({"temperature": 0}, "Temperature must be a number from 0.1 to 2, got 0"),
    ({"temperature": -1}, "Temperature must be a number from 0.1 to 2, got -1"),
    ({"temperature": 5}, "Temperature must be a number from 0.1 to 2, got 5"),
    ({"n": 65}, "Samples must be a whole number from 1 to 64, got 65"),
    ({"n": 1000}, "Samples must be a whole number from 1 to 64, got 1000"),
    ({"n": 0}, "Samples must be a whole number from 1 to 64, got 0"),
    ({"n": 2.5}, "Samples must be a whole number from 1 to 64, got 2.5"),
    ({"seed": -3}, "Seed must be a whole number from 0 to 2147483647, got -3"),
    ({"top_k": 17}, "Top-k must be 0 (off) or a whole number from 1 to 16, got 17"),
    ({"top_p": 1.5}, "Top-p must be a number above 0 and at most 1 (1: off), got 1.5"),
    ({"model": "v9"}, "unknown model 'v9'; choose one of v1, v2, v3, v4"),
    ({"model": "../../etc/passwd"}, "unknown model"),
    ({"digit": 10}, "Digit must be a whole number from 0 to 9, got 10"),
    ({"digit": 2.5}, "Digit must be a whole number from 0 to 9, got 2.5"),
]


@pytest.mark.parametrize("bad, message", BAD_INPUTS)
def test_bad_input_is_refused_with_a_short_message(client, bad, message):
    with pytest.raises(Exception) as refused:
        generate(client, **bad)
    text = str(refused.value)
    assert message in text
    assert "Traceback" not in text and len(text) < 300


def test_the_app_keeps_answering_after_each_bad_input(client):
    for bad, _ in BAD_INPUTS:
        with pytest.raises(AppError):
            generate(client, **bad)
    with Image.open(generate(client, n=1)) as picture:
        assert picture.size == expected_size(1)


def test_nan_temperature_is_refused_by_the_server(app_server):
    """gradio_client cannot even send NaN, but a hand-made request can: the server must check it too."""
    body = '{"data": ["v3", 3, NaN, 4, 7, 0, 1]}'
    base = app_server.url.rstrip("/") + "/gradio_api/call/generate"
    event = httpx.post(base, content=body, headers={"content-type": "application/json"}, timeout=30).json()["event_id"]
    stream = httpx.get(f"{base}/{event}", timeout=60).text
    assert "event: error" in stream
    assert "Temperature must be a number from 0.1 to 2, got nan" in stream
    assert "Traceback" not in stream


def test_an_unconditional_model_ignores_the_digit(client):
    with Image.open(generate(client, model="v1", digit=9)) as nine, Image.open(generate(client, model="v1", digit=3)) as three:
        assert nine.size == expected_size(4)
        assert np.array_equal(np.asarray(nine), np.asarray(three))  # same seed: the digit changed nothing
    with Image.open(generate(client, model="v3", digit=9)) as nine, Image.open(generate(client, model="v3", digit=3)) as three:
        assert not np.array_equal(np.asarray(nine), np.asarray(three))  # V3 does take it


def test_top_k_and_top_p_are_optional_inputs_after_the_others(client):
    with Image.open(generate(client, seed=11)) as plain, Image.open(generate(client, seed=11, top_k=0, top_p=1)) as off:
        assert np.array_equal(np.asarray(plain), np.asarray(off))  # 0 and 1 mean off


@pytest.mark.skipif("top_k" not in inspect.signature(pixelar.sample).parameters, reason="this core has no top-k yet")
def test_top_k_and_top_p_change_the_samples(client):
    with Image.open(generate(client, seed=11)) as plain, Image.open(generate(client, seed=11, top_k=1)) as greedy:
        assert not np.array_equal(np.asarray(plain), np.asarray(greedy))
    with Image.open(generate(client, seed=11, top_p=0.5)) as nucleus:
        assert nucleus.size == expected_size(4)


def test_temperature_and_seed_limits_are_inclusive(client):
    for temperature in (0.1, 2.0):
        with Image.open(generate(client, temperature=temperature, n=1, seed=2**31 - 1)) as picture:
            assert picture.size == expected_size(1)


def test_the_app_started_beside_bad_files_and_logged_each(app_server, client):
    skipped = re.findall(r"WARNING demo.models: skipping \S*/([^/\s]+\.safetensors):", app_server.output())
    assert sorted(skipped) == [
        "huge-claim.safetensors", "list-header.safetensors", "nan-weights.safetensors"]


api_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6),
    st.lists(st.integers(0, 9), max_size=2),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(["v1", "v3", "", "v9"]) | api_values, digit=st.integers(-2, 11) | api_values,
       temperature=st.floats(-1, 3) | api_values, n=st.integers(-1, 70) | api_values, seed=st.integers(-5, 2**32) | api_values)
def test_random_api_values_get_a_result_or_a_short_error(client, model, digit, temperature, n, seed):
    try:
        result = client.predict(model, digit, temperature, n, seed, api_name="/generate")
    except AppError as error:
        assert "Traceback" not in str(error) and len(str(error)) < 300
    else:
        with Image.open(result) as picture:
            assert picture.size[0] > 0
    with Image.open(generate(client, n=1)) as picture:  # and the app still answers
        assert picture.size == expected_size(1)


def test_files_are_written_once_uploads_are_capped_and_sessions_leave_nothing(app_checkpoints, tmp_path, monkeypatch):
    """Issue 15, point 7, on a server of its own: a download (here Step through's GIF; a trained checkpoint goes the
    same way) is written once, in its session's folder inside Gradio's cache; an upload over the largest checkpoint
    the app accepts is refused; stopping the server deletes every session's folder."""
    from app import MAX_UPLOAD_BYTES
    from app_fixtures import AppServer, press_sample, step_sample_event

    cache, temp = tmp_path / "cache", tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    monkeypatch.setenv("TMPDIR", str(temp))
    server = AppServer(app_checkpoints, tmp_path / "data", tmp_path / "app.log")
    try:
        server.wait_until_up()
        press_sample(server.url, *step_sample_event(server.url), session="one", seed=1)
        gifs = list(tmp_path.rglob("*.gif"))
        assert len(gifs) == 1 and gifs[0].parent.parent.name.startswith("pixelar-sessions-"), gifs
        huge = tmp_path / "huge.safetensors"
        with open(huge, "wb") as out:
            out.truncate(MAX_UPLOAD_BYTES + 1)  # sparse: no disk used
        with open(huge, "rb") as upload:
            answer = httpx.post(server.url + "gradio_api/upload", files={"files": upload}, timeout=120)
        assert answer.status_code == 413, answer.text
        assert not list(cache.rglob("huge*"))
    finally:
        server.stop()
    assert server.process.returncode is not None
    assert not list(tmp_path.rglob("*.gif")) and not list(cache.glob("pixelar-sessions-*")), server.output()
