"""Links and the class board across browser sessions, in real Chromium at 1280x720: a link copied from one session
opens the same image at the same step (and what-if) in another, same pixels; a bad link opens the app with a message;
Share shows the link and a QR code; a model one session publishes is seen and opened by another."""
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from test_browser import (  # noqa: F401  (browser: a fixture)
    CHROMIUM, PAGE_ERRORS, TIMEOUT_MS, browser, go_to_step, open_app, player_hook, sample_into_player, shot, step_of,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def query(page) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(page.url).query).items()}


def wait_for_query(page, **expected) -> dict:
    """Wait until the page's URL holds ``expected`` (the page writes it as things change)."""
    try:
        page.wait_for_function("expected => { const q = new URLSearchParams(location.search);"
                               " return Object.entries(expected).every(([k, v]) => q.get(k) === v); }", arg=expected)
    except Exception as error:
        raise AssertionError(f"the URL never held {expected}: {page.url}") from error
    return query(page)


def loaded_player(page) -> None:
    page.wait_for_function("() => (window.pixelarPlayers || []).some(p => p.loaded)")


def test_a_link_opens_the_same_image_at_the_same_step_in_another_session(browser, app_server):
    first = open_app(browser, app_server.url)
    sample_into_player(first)
    go_to_step(first, 300)
    bars = first.locator("#step-player .px-bars").first
    box = bars.bounding_box()
    old = first.evaluate(f"() => {player_hook(first)}.loaded")
    left, right = 40, 8  # the chart's margins in player.js
    bars.click(position={"x": left + 9.5 * (box["width"] - left - right) / 16, "y": box["height"] / 2})  # bin 9
    first.wait_for_function(f"old => {player_hook(first)}.loaded !== old", arg=old)
    go_to_step(first, 420)
    link = wait_for_query(first, tab="step", step="420", whatif="300:9")
    assert link["model"] and link["seed"] and "digit" in link
    url = first.url

    second = open_app(browser, url)  # another browser session: its own cookies and Gradio session
    loaded_player(second)
    assert second.get_by_role("tab", name="Step through").get_attribute("aria-selected") == "true"
    assert step_of(second) == 420
    for panel in (0, 1):
        ours = first.evaluate(f"() => {player_hook(first)}.tokens({panel})")
        theirs = second.evaluate(f"() => {player_hook(second)}.tokens({panel})")
        assert ours == theirs and len(ours) == 784  # same pixels, the what-if's too
    assert second.locator("#step-player .px-caption").inner_text() == first.locator("#step-player .px-caption").inner_text()
    assert query(second) == query(first)  # the opened page writes the same link back
    shot(second, "link-opened")


def test_the_url_follows_the_tab_while_the_server_is_busy(browser, app_server):
    """Gradio runs a tab's select listeners one after another, behind the tab's server calls; on a busy server the
    URL named the tab before. With every server call held, the URL still follows the tab at once."""
    page = open_app(browser, app_server.url)
    wait_for_query(page, tab="generate")
    held = []
    page.route("**/gradio_api/**", lambda route: held.append(route))
    page.get_by_role("tab", name="Step through").click()
    page.set_default_timeout(10_000)
    wait_for_query(page, tab="step")
    assert held  # the tab's server calls were waiting all along
    page.context.close()


def test_a_generate_link_opens_the_same_grid(browser, app_server):
    first = open_app(browser, app_server.url)
    first.locator("#tab-generate .seed-box input").fill("4321")
    first.locator("#tab-generate").get_by_label("New seed each time").uncheck()
    first.locator("#generate-button").click()
    first.locator("#generate-grid img").wait_for()
    link = wait_for_query(first, tab="generate", seed="4321")
    second = open_app(browser, first.url)
    second.locator("#generate-grid img").wait_for()
    assert second.locator("#generate-caption").inner_text() == first.locator("#generate-caption").inner_text()
    pictures = [page.evaluate("() => document.querySelector('#generate-grid img').src") for page in (first, second)]
    assert link["n"] == "16" and pictures[0].startswith(("http", "data:")) and pictures[1].startswith(("http", "data:"))


def test_a_bad_link_opens_the_app_with_a_message(browser, app_server):
    dialogs = []
    page = open_app(browser, app_server.url + "?tab=step&model=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&digit=2")
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    warning = page.locator(".toast-body").filter(has_text="could not be opened")
    warning.wait_for()
    assert "unknown model" in warning.inner_text() and "<img" in warning.inner_text()  # shown as text
    assert page.locator(".toast-body img").count() == 0 and dialogs == []
    assert wait_for_query(page, tab="generate")["tab"] == "generate"  # the page writes the state it really shows
    page = open_app(browser, app_server.url + "?tab=step&model=v3&t=99")
    page.locator(".toast-body").filter(has_text="Temperature").wait_for()


def test_share_shows_the_link_and_a_qr_code(browser, app_server):
    page = open_app(browser, app_server.url + "?tab=train&model=v1&context=7&k=8")
    wait_for_query(page, tab="train", model="v1", context="7", k="8")
    assert page.locator("#train-k input").input_value() == "8"
    page.locator("#share-button").click()
    page.locator("#share-qr svg.segno").wait_for()
    shown = page.locator("#share-qr code").inner_text()
    assert parse_qs(urlsplit(shown).query) == parse_qs(urlsplit(page.url).query)
    box = page.locator("#share-qr svg.segno").bounding_box()
    assert box["width"] >= 300  # large enough to scan from the back of a room
    shot(page, "share")
    page.locator("#share-close").click()
    page.locator("#share-qr svg.segno").wait_for(state="hidden")


def test_one_session_publishes_and_another_opens_it(browser, app_server, tiny_checkpoints):
    author = open_app(browser, app_server.url)
    author.get_by_role("tab", name="Train").click()
    author.get_by_text("Publish a model").click()
    author.get_by_label(re.compile("Display name")).fill("Ada's <b>tiny</b> V1")
    author.locator("#tab-train input[type=file]").set_input_files(str(tiny_checkpoints / "v1.safetensors"))
    author.get_by_role("button", name="Publish this file").click()
    author.locator("#board-table").get_by_text("Ada's <b>tiny</b> V1").first.wait_for()
    author.reload()  # the browser keeps the session's board token: the entry is still "yours"
    author.get_by_role("tab", name="Train").click()
    author.locator("#board-table").get_by_text("(yours)").first.wait_for()

    reader = open_app(browser, app_server.url)
    reader.get_by_role("tab", name="Train").click()
    refresh = reader.get_by_role("button", name="Refresh the board")
    for _ in range(60):  # scored in the background: "scoring…" until done
        refresh.click()
        reader.wait_for_timeout(1000)
        if "scoring" not in reader.locator("#board-table").inner_text():
            break
    assert "Ada's <b>tiny</b> V1" in reader.locator("#board-table").inner_text()
    reader.get_by_role("tab", name="Step through").click()
    reader.locator("#tab-step").get_by_label("Model").first.click()
    reader.get_by_role("option").filter(has_text="board · Ada's <b>tiny</b> V1").first.click()
    sample_into_player(reader)
    assert reader.locator("#step-player .px-caption").inner_text().startswith("Ada's <b>tiny</b> V1 (board #")
    link = wait_for_query(reader, tab="step")
    assert link["model"].startswith("board-")  # a board model is linkable
    third = open_app(browser, reader.url)
    loaded_player(third)
    assert third.evaluate(f"() => {player_hook(third)}.tokens(0)") == reader.evaluate(f"() => {player_hook(reader)}.tokens(0)")
    assert not [error for error in PAGE_ERRORS if app_server.url in error]


def test_the_lesson_walks_with_next_and_back(browser, app_server):
    from demo.lesson import LESSON, step_href

    step = next(i for i, s in enumerate(LESSON, 1) if s.link["tab"] == "step" and s.link["model"] == "v3") - 1
    page = open_app(browser, app_server.url + step_href(step))  # the last step on Generate, then on to Step through
    bar = page.locator("#lesson .lesson-bar")
    bar.wait_for()
    assert f"Lesson {step} of {len(LESSON)}" in bar.inner_text() and LESSON[step - 1].title in bar.inner_text()
    page.locator("#generate-grid img").wait_for()
    page.locator("#tab-generate .seed-box input").fill("77")  # a change keeps the lesson in the URL
    page.locator("#tab-generate .seed-box input").press("Enter")
    wait_for_query(page, lesson=str(step), seed="77")
    assert page.locator("#lesson .lesson-next").bounding_box()["y"] < 200  # on screen at the top, every step
    page.locator("#lesson .lesson-next").click()
    page.wait_for_url(re.compile(f"lesson={step + 1}"))
    loaded_player(page)
    assert page.get_by_role("tab", name="Step through").get_attribute("aria-selected") == "true"
    assert LESSON[step].title in page.locator("#lesson .lesson-bar").inner_text()
    assert step_of(page) == int(LESSON[step].link["step"])
    shot(page, "lesson")
    page.locator("#step-player .px-present").click()  # the lesson's bar comes along into Present
    strip = page.locator("#step-player .px-lesson")
    strip.get_by_text(LESSON[step].title).wait_for()
    page.wait_for_timeout(300)  # one refit
    canvas = page.locator("#step-player .px-canvas").bounding_box()
    assert canvas["height"] >= 600  # still readable from the back row
    for selector in (".px-lesson", ".px-bars", ".px-entropy-map", ".px-reshape"):
        box = page.locator(f"#step-player {selector}").first.bounding_box()
        assert box["x"] >= canvas["x"] + canvas["width"] and box["y"] + box["height"] <= 720, selector
    assert page.locator("#step-player .px-entropy-map").bounding_box()["height"] >= 150
    assert page.locator("#step-player .px-bars").first.bounding_box()["height"] >= 150  # not squeezed by the strip
    shot(page, "lesson-present")
    page.keyboard.press("Escape")
    strip.wait_for(state="detached")
    page.locator("#lesson .lesson-back").click()
    page.wait_for_url(re.compile(f"lesson={step}&|lesson={step}$"))
    page.locator("#lesson .lesson-bar").get_by_text(LESSON[step - 1].title).wait_for()
