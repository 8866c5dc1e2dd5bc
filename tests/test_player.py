"""What the step player receives: a trace packed compactly and losslessly enough to redraw every step."""
import base64
import json

import numpy as np
import pytest

import pixelar
from demo import player
from demo.step_tab import what_if_caption
from pixelar.sampling import softmax_at
from helpers import tiny


def unpack(panel: dict, k: int) -> dict:
    raw = {key: base64.b64decode(panel[key]) for key in ("tokens", "logp", "entropy", "chosen")}
    return {
        "tokens": np.frombuffer(raw["tokens"], dtype=np.uint8),
        "logp": np.frombuffer(raw["logp"], dtype="<f2").astype(np.float64).reshape(784, k),
        "entropy": np.frombuffer(raw["entropy"], dtype="<f2"),
        "chosen": np.frombuffer(raw["chosen"], dtype="<f2"),
    }


@pytest.fixture(scope="module")
def trace():
    return pixelar.sample(tiny("v3"), 1, labels=4, temperature=0.8, seed=3)


def test_a_packed_trace_holds_every_step(trace):
    value = player.payload([player.pack_panel(trace)], trace, player.Facts("v3", True, "4"), "caption")
    got = unpack(value["panels"][0], trace.k)
    assert np.array_equal(got["tokens"], trace.tokens[0])
    assert np.allclose(got["entropy"], trace.entropy[0], atol=2e-3)
    assert np.allclose(got["chosen"], trace.chosen_prob[0], atol=1e-3)
    # the bars at any temperature come out of the log-probabilities as they do out of the raw logits
    for t in (0.5, 0.8, 1.0, 1.7):
        assert np.allclose(softmax_at(got["logp"], t), softmax_at(trace.logits[0], t), atol=2e-3)
    assert value["k"] == 16 and value["context"] == 28 and value["temperature"] == 0.8 and value["seed"] == 3
    assert value["class_name"] == "4" and value["uses_position"] is True


def test_the_payload_is_compact(trace):
    value = player.payload([player.pack_panel(trace)], trace, player.Facts("v3", True, "4"), "caption")
    size = player.size_in_bytes(value)
    raw = 784 * (1 + 2 * 16 + 2 + 2)  # uint8 token, float16 log-probs, entropy and chosen probability
    assert raw <= size < raw * 4 / 3 + 2_000  # base64 plus a few hundred bytes of facts
    assert size == len(json.dumps(value, separators=(",", ":")))
    again = player.payload([player.pack_panel(trace)], trace, player.Facts("v3", True, "4"), "caption")
    assert again["id"] != value["id"]  # the page loads every new value, even of the same seed


def test_what_if_captions_say_when_nothing_changes(trace):
    at = 300
    same = int(trace.tokens[0, at])
    assert "nothing changes" in what_if_caption(trace, trace, at, same)
    other = pixelar.sample(tiny("v3"), 1, labels=4, temperature=0.8, seed=3, prefix=trace.tokens[:, :at],
                           forced={at: (same + 8) % 16})
    changed = int((other.tokens[0] != trace.tokens[0]).sum()) - 1
    assert f"{changed} later pixel" in what_if_caption(trace, other, at, (same + 8) % 16)


def test_a_v4_trace_tells_the_page_it_sees_the_whole_past():
    model = pixelar.build_model("v4", channels=8, head=16).eval()
    trace = pixelar.sample(model, 1, labels=2, seed=5)
    value = player.payload([player.pack_panel(trace)], trace, player.Facts("v4", model.uses_position, "2"), "caption")
    assert value["context"] == 784 and value["k"] == 16 and value["class_name"] == "2"  # the window: every earlier pixel
    assert np.array_equal(unpack(value["panels"][0], 16)["tokens"], trace.tokens[0])


def test_the_page_draws_with_the_servers_colours_and_scales():
    """player.js and player.css hold no colour of their own that the server's pictures also use: the page gets
    ``pixelar.render.COLOURS`` and the surprise scale from player.py."""
    from pixelar import render

    script, style = player.player_js(), player.player_css()
    assert not any(tag in script for tag in ("__LUTS__", "__COLOURS__", "__SURPRISE_MAX__"))
    assert f"const C = {json.dumps(render.css_colours(), separators=(',', ':'))};" in script
    assert "SURPRISE_MAX = 8," in script
    assert style.startswith(".px-player { --px-bg: #1c1c24; ")
    body = style.split("\n", 1)[1]
    raw = (player.HERE / "player.js").read_text() + (player.HERE / "player.css").read_text()
    for colour in render.css_colours().values():
        assert colour not in raw and colour not in body
