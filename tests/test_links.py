"""Links (demo/links.py): a link's values are outside input. Each tab's opener checks them through the tab's own
checks; a bad one gives a message naming it. Share turns any page address into an escaped link and a QR code."""
from pathlib import Path

import gradio as gr
import pytest
from hypothesis import given, settings, strategies as st

from demo.links import MAX_LINK_CHARS, MAX_VALUE_CHARS, TabLink, as_flag, as_number, link_values, share_html, share_link
from pixelar.models import N_PIXELS


def test_numbers_flags_and_lengths():
    assert as_number("3") == 3 and isinstance(as_number("3"), int)
    assert as_number("3.0") == 3.0 and isinstance(as_number("3.0"), float)  # 3.0 stays a float: the check decides
    assert as_number("3.7") == 3.7 and as_number("abc") == "abc" and as_number(None) is None
    assert as_flag("1", False) is True and as_flag("false", True) is False and as_flag(None, True) is True
    with pytest.raises(ValueError, match="1 or 0"):
        as_flag("yes please", False)
    link = TabLink("step", {"model": None, "seed": None}, lambda values, workspace: {}, extra_keys=("step",))
    assert link_values({"model": "v3", "step": "5", "other": "x"}, link) == {"model": "v3", "step": "5"}
    with pytest.raises(ValueError, match="'model' is longer"):
        link_values({"model": "m" * (MAX_VALUE_CHARS + 1)}, link)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.integers(), st.none(), st.lists(st.text())),
       st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_share_takes_any_address_and_gives_an_escaped_link_or_a_message(address, tail):
    for candidate in (address, f"http://class.example:7860/?tab=step&model={tail}", f"javascript:{tail}"):
        try:
            link = share_link(candidate)
        except ValueError as error:
            assert "address" in str(error)
            continue
        assert link.startswith(("http://", "https://")) and len(link) <= 3 * MAX_LINK_CHARS
        page = share_html(link)
        assert "<script" not in page.lower() and "<img" not in page.lower() and page.count("<svg") == 1


def test_share_refuses_what_is_not_a_web_address():
    for bad in ("javascript:alert(1)", "file:///etc/passwd", "http://", "x" * (MAX_LINK_CHARS + 1), "", None, 7):
        with pytest.raises(ValueError, match="address"):
            share_link(bad)
    link = share_link('http://h:1/?tab=step&model=<script>alert("x")</script>#frag')
    assert "#frag" not in link and "<script>" not in share_html(link)


# ---- each tab's opener, through the real app ----


@pytest.fixture(scope="module")
def app_links(tiny_checkpoints, tmp_path_factory):
    from app import build_app

    folder = tmp_path_factory.mktemp("links")
    app = build_app(tiny_checkpoints, folder / "data-root", data_dir=folder / "board")
    openers = {}
    for block_fn in app.fns.values():
        if block_fn.name == "open_link":
            openers["app"] = block_fn.fn
    return app, openers["app"]


def opened(app_links, **query):
    app, open_link = app_links
    request = gr.Request(query_params=query)
    return open_link(None, request)


def values_by_label(updates: dict) -> dict:
    """The updates by their component's label, else its elem_id."""
    return {getattr(c, "label", None) or getattr(c, "elem_id", None): value for c, value in updates.items()}


def test_a_step_link_opens_the_same_image_at_its_step_and_what_if(app_links):
    query = {"tab": "step", "model": "v3", "digit": "3", "seed": "1234", "t": "0.9", "step": "300", "whatif": "250:7",
             "look": "1"}
    first, again = opened(app_links, **query), opened(app_links, **query)
    player, player_again = values_by_label(first)["step-player"], values_by_label(again)["step-player"]
    assert player["step"] == 300 and player["look"] is True and player["seed"] == 1234 and player["temperature"] == 0.9
    assert len(player["panels"]) == 2 and player["panels"][1]["forced_step"] == 250
    assert [p["tokens"] for p in player["panels"]] == [p["tokens"] for p in player_again["panels"]]  # same pixels
    labels = values_by_label(first)
    assert labels["Seed"] == 1234 and labels["New seed each time"] is False and labels["Digit"] == 3


def test_a_generate_link_draws_its_grid(app_links):
    shown = values_by_label(opened(app_links, tab="generate", model="v1", seed="7", n="4", entropy="1"))
    assert shown["Seed"] == 7 and shown["Samples (1–64)"] == 4 and shown["Entropy maps too"] is True
    assert shown["generate-caption"].startswith("**4 samples** from **v1**")
    assert shown["Samples"].size[0] > 0  # the grid


def test_a_train_link_sets_shape_and_preset(app_links):
    shown = values_by_label(opened(app_links, tab="train", model="v2", context="56", k="8", data="mnist-5k"))
    assert shown["Model"] == "v2" and shown["K bins (2–256)"] == 8
    assert any(getattr(v, "value", None) == 56 for v in shown.values())


@pytest.mark.parametrize("query, named", [
    ({"tab": "nope"}, "no tab"),
    ({"tab": "step", "model": "<img src=x onerror=alert(1)>"}, "unknown model"),
    ({"tab": "step", "model": "v3", "t": "99"}, "Temperature"),
    ({"tab": "step", "model": "v3", "seed": "abc"}, "Seed"),
    ({"tab": "step", "model": "v3", "step": "3.7"}, "step"),
    ({"tab": "step", "model": "v3", "step": str(N_PIXELS + 1)}, "step"),
    ({"tab": "step", "model": "v3", "whatif": "10:99"}, "bin"),
    ({"tab": "step", "model": "v3", "look": "maybe"}, "tick box"),
    ({"tab": "generate", "model": "v3", "n": "10" * 200}, "longer than"),
    ({"tab": "generate", "model": "v3", "n": "0"}, "Samples"),
    ({"tab": "train", "model": "v9"}, "model"),
    ({"tab": "train", "model": "v3", "k": "3.7"}, "K"),
    ({"tab": "train", "model": "v3", "context": "5"}, "context"),
    ({"tab": "train", "model": "v3", "preset": "forever"}, "Budget"),
])
def test_a_bad_link_opens_nothing_and_says_what_was_wrong(app_links, query, named):
    with pytest.warns(UserWarning) as record:  # gr.Warning, with no page listening
        updates = opened(app_links, **query)
    assert [getattr(c, "visible", None) for c in updates] == [False]  # only the hidden "opened tab" box
    messages = [str(r.message) for r in record]
    assert any("could not be opened" in m and named in m for m in messages), messages
    assert all("<img" not in m for m in messages)


# ---- the lesson ----


def test_the_lesson_bar_links_back_and_next():
    from urllib.parse import parse_qs, urlsplit

    from demo.lesson import LESSON, lesson_html, step_href, step_number

    first, last = lesson_html(1), lesson_html(len(LESSON))
    assert "Back" not in first and "Next ▶" in first and "End of the lesson" in last
    for number, step in enumerate(LESSON, 1):
        query = {k: v[0] for k, v in parse_qs(urlsplit(step_href(number)).query).items()}
        assert query == {**step.link, "lesson": str(number)}
        if number < len(LESSON):
            assert f'href="{step_href(number + 1)}"'.replace("&", "&amp;") in lesson_html(number)
    for bad in ("0", str(len(LESSON) + 1), "2.5", "x"):
        with pytest.raises(ValueError, match="lesson's step"):
            step_number(as_number(bad))


@pytest.mark.slow
def test_every_lesson_step_opens_on_the_shipped_models(tiny_checkpoints, tmp_path):
    """Each step's link passes its tab's checks and opens with its picture: on the shipped models' names (tiny
    models under those names, so that it takes seconds)."""
    import shutil
    import warnings

    from app import build_app
    from demo.lesson import LESSON, step_href

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shipped = {path.stem for path in (Path(__file__).resolve().parents[1] / "checkpoints").glob("*.safetensors")}
    for name in {step.link["model"] for step in LESSON if "model" in step.link}:
        assert name in shipped, name
        shutil.copy(tiny_checkpoints / f"{name.split('-')[0]}.safetensors", folder / f"{name}.safetensors")
    app = build_app(folder, tmp_path / "data-root", data_dir=tmp_path / "board")
    open_link = next(block_fn.fn for block_fn in app.fns.values() if block_fn.name == "open_link")
    for number in range(1, len(LESSON) + 1):
        query = dict(pair.split("=") for pair in step_href(number)[1:].split("&"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a gr.Warning would mean the step could not be opened
            updates = open_link(None, gr.Request(query_params={k: v.replace("%3A", ":") for k, v in query.items()}))
        assert f"Lesson {number} of {len(LESSON)}" in values_by_label(updates)["lesson"].value
