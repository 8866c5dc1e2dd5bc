"""The real app in headless Chromium (Playwright), at a projector's 1280x720 and a phone's 390x844: every tab,
the browser-side step player (frames per second, no requests while playing, keyboard, what-if), bad input, a
tiny training run. Screenshots go to test-artifacts/ to be looked at. Every page's errors are collected, and the
last test checks that the whole tour raised none, in the page or on the server."""
import inspect
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pixelar
from pixelar import render
from pixelar.sampling import softmax_at

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TIMEOUT_MS = 90_000  # the CPUs may be shared with other work
PROJECTOR = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
PAGE_ERRORS: list[str] = []  # from every page of this module

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


def open_app(browser, url, viewport=PROJECTOR):
    """A new browser session (its own cookies and Gradio session) on the app; its page errors are collected."""
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: PAGE_ERRORS.append(f"{page.url}: {error}"))
    page.goto(url)
    page.get_by_role("tab", name="Generate").wait_for()
    return page


@pytest.fixture(scope="module")
def page(browser, app_server):
    return open_app(browser, app_server.url)


def shot(page, name: str, full_page: bool = False) -> None:
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=full_page)


def image_src(page, elem_id: str) -> str | None:
    """The first image's src, read in one step (the image may be replaced between two Playwright calls)."""
    return page.evaluate("id => document.querySelector(`#${id} img`)?.getAttribute('src') ?? null", elem_id)


def wait_for_new_image(page, elem_id: str, old: str | None) -> str:
    page.wait_for_function(
        "([id, old]) => { const img = document.querySelector(`#${id} img`);"
        " return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src') !== old; }",
        arg=[elem_id, old],
    )
    return image_src(page, elem_id)


def inside_viewport(page, locator) -> bool:
    box, size = locator.bounding_box(), page.viewport_size
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5 \
        and box["y"] + box["height"] <= size["height"] + 0.5


def close_messages(page) -> None:
    """Close the error messages a test provoked (they would cover the next screenshots)."""
    for button in page.locator(".toast-close").all():
        if button.is_visible():
            button.click()


def caption(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


# ---- Generate ----


def test_generate_shows_its_button_and_grid_on_a_projector(page):
    button = page.locator("#generate-button")
    assert inside_viewport(page, button)
    button.click()
    wait_for_new_image(page, "generate-grid", None)
    grid = page.locator("#generate-grid img").first
    assert grid.evaluate("img => img.naturalWidth") >= 600
    assert grid.evaluate("img => getComputedStyle(img).imageRendering") == "pixelated"
    assert inside_viewport(page, grid)
    assert "16 samples" in caption(page, "generate-caption")
    shot(page, "generate")


def test_compare_and_the_strip_replace_the_picture_where_the_eye_is(page):
    old = image_src(page, "generate-grid")
    page.get_by_role("button", name="Compare the models").click()
    old = wait_for_new_image(page, "generate-grid", old)
    assert "The models side by side" in caption(page, "generate-caption")
    assert inside_viewport(page, page.locator("#generate-grid img").first)
    shot(page, "compare")
    page.locator("#strip-button").click()
    wait_for_new_image(page, "generate-grid", old)
    text = caption(page, "generate-caption")
    assert "at four temperatures" in text and "Why a cold sampler never starts a stroke" in text
    assert not re.search(r"\bsafe\b", page.locator("#tab-generate").inner_text())  # cold is not "safe"
    strip = page.locator("#generate-grid img").first
    assert strip.evaluate("img => img.naturalWidth") >= 4 * 280 and inside_viewport(page, strip)
    shot(page, "temperature-strip")


def test_a_model_that_ignores_the_class_greys_out_the_digits_and_clears_stale_results(page):
    page.get_by_label("Model").first.click()
    page.get_by_role("option", name=re.compile("^V1 · pretrained")).click()
    page.wait_for_function("() => !document.querySelector('#generate-grid img')")  # the strip no longer matches
    assert "Settings changed" in caption(page, "generate-caption")
    digits = page.locator("#tab-generate .class-picker input[type=radio]")
    assert digits.count() == 11 and all(digits.nth(i).is_disabled() for i in range(11))
    page.wait_for_function("() => Number(getComputedStyle(document.querySelector("
                           "'#tab-generate .class-picker .wrap label')).opacity) < 0.6")  # visibly switched off
    page.get_by_text("V1 ignores the class").wait_for()
    shot(page, "v1-digits-off")
    page.get_by_label("Model").first.click()
    page.get_by_role("option", name=re.compile("^V3 · pretrained")).click()


def test_bad_numbers_are_refused_by_name_and_range_never_clamped(page, app_server):
    temperature = page.locator("#tab-generate").get_by_label("Temperature")
    temperature.fill("0")
    page.locator("#generate-button").click()
    page.get_by_text("Temperature must be a number from 0.1 to 2, got 0").first.wait_for()
    assert temperature.input_value() == "0"  # not silently changed to 0.1
    temperature.fill("1")
    seed = page.locator("#tab-generate .seed-box input")
    page.locator("#tab-generate").get_by_label("New seed each time").uncheck()
    seed.fill("-5")
    page.locator("#generate-button").click()
    page.get_by_text("Seed must be a whole number from 0 to 2147483647, got -5").first.wait_for()
    assert seed.is_visible() and seed.is_editable()  # no error badge over the box
    assert page.locator("#tab-generate .seed-box .error").count() == 0
    shot(page, "bad-seed")
    seed.fill("")  # an empty box mid-edit raises nothing; Generate then says what to do, naming the box
    page.locator("#generate-button").click()
    page.get_by_text("Seed is empty: type a seed from 0 to 2147483647, or tick New seed each time").first.wait_for()
    page.locator("#tab-generate").get_by_label("New seed each time").check()
    close_messages(page)
    assert "ComponentProcessingError" not in app_server.output()


CHROME_OVER_PICTURE = """(id) => { const block = document.querySelector('#' + id);
  const shown = (e) => { const b = e.getBoundingClientRect(); return b.width > 0 && b.height > 0; };
  const box = (e) => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  const pictures = [...block.querySelectorAll('img, canvas, svg')].filter((e) => shown(e) && !e.closest('label, .icon-button-wrapper'));
  const chrome = [...block.querySelectorAll('label, .icon-button-wrapper, .icon-button-wrapper button')].filter(shown);
  const over = [];
  for (const c of chrome) for (const p of pictures) { const [a, b] = [box(c), box(p)];
    if (a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]) over.push(`${c.tagName}.${c.className} over ${p.tagName}`); }
  return {pictures: pictures.length, chrome: chrome.length, over}; }"""  # Gradio's label and buttons on a picture


def chrome_over_picture(page, elem_id: str, chrome: int = 1) -> list[str]:
    """What of Gradio's own label badge and buttons lies on the block's picture (one picture, ``chrome`` of them at least)."""
    found = page.evaluate(CHROME_OVER_PICTURE, elem_id)
    assert found["pictures"] >= 1 and found["chrome"] >= chrome, (elem_id, found)
    return found["over"]


@pytest.mark.parametrize("viewport", [PROJECTOR, PHONE], ids=["projector", "phone"])
def test_gradio_labels_and_buttons_never_cover_a_picture(browser, app_server, viewport):
    """Issue 20: the samples, their entropy maps and the temperature strip keep their top rows clear of Gradio's
    label badge and fullscreen/download buttons."""
    page = open_app(browser, app_server.url, viewport)
    name = "projector" if viewport is PROJECTOR else "phone"
    page.locator("#tab-generate").get_by_label("Entropy maps too").check()
    page.locator("#generate-button").click()
    page.wait_for_function("() => document.querySelector('#generate-entropy img')?.complete")
    assert chrome_over_picture(page, "generate-grid", 2) == []
    assert chrome_over_picture(page, "generate-entropy", 3) == []  # its label and two buttons
    page.locator("#generate-entropy").scroll_into_view_if_needed()
    shot(page, f"pictures-clear-{name}")
    old = image_src(page, "generate-grid")
    page.locator("#strip-button").click()
    wait_for_new_image(page, "generate-grid", old)
    assert chrome_over_picture(page, "generate-grid", 2) == []
    page.locator("#generate-grid").scroll_into_view_if_needed()
    shot(page, f"strip-clear-{name}")
    page.context.close()


# ---- Step through: the browser-side player ----


def player_hook(page) -> str:
    return "window.pixelarPlayers.find(p => p.loaded)"


def sample_into_player(page) -> None:
    page.get_by_role("tab", name="Step through").click()
    old = page.evaluate("() => (window.pixelarPlayers || []).map(p => p.loaded).join()")
    page.locator("#step-sample").click()
    page.wait_for_function("old => (window.pixelarPlayers || []).map(p => p.loaded).join() !== old "
                           "&& window.pixelarPlayers.some(p => p.loaded)", arg=old)


def step_of(page) -> int:
    return page.evaluate(f"() => {player_hook(page)}.step")


def test_the_player_fits_a_projector_and_the_trace_is_sent_once(page):
    sample_into_player(page)
    note = page.locator("#step-size-note").inner_text()
    size = int(re.search(r"([\d,]+) bytes", note).group(1).replace(",", ""))
    assert size < 60_000
    (ARTIFACTS / "player-payload-bytes.txt").write_text(f"{size}\n")
    page.evaluate("() => window.scrollTo(0, 0)")
    for part in ["#step-sample", "#step-player .px-slider", "#step-player .px-canvas", "#step-player .px-bars",
                 "#step-player .px-entropy-map", "#step-player .px-surprise-map", "#step-player .px-play"]:
        assert inside_viewport(page, page.locator(part).first), part
    shot(page, "step-0")
    # the canvas and the page draw with pixelar.render.COLOURS: the pixel being chosen, its window, the start tokens
    for name in ("chosen", "window", "start"):
        assert page.evaluate(CANVAS_COLOUR, list(render.COLOURS[name])) > 0, name
    background = page.evaluate("() => getComputedStyle(document.querySelector('#step-player .px-player')).backgroundColor")
    assert background == "rgb({}, {}, {})".format(*render.COLOURS["bg"])


CANVAS_COLOUR = """(rgb) => { const c = document.querySelector('#step-player .px-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] === rgb[0] && d[i + 1] === rgb[1] && d[i + 2] === rgb[2]) n++;
  return n; }"""  # pixels of the big canvas in one colour


def ensure_player(page) -> None:
    """A sampled image in the player (when a test runs on its own), on the Step-through tab."""
    if not page.evaluate("() => (window.pixelarPlayers || []).some(p => p.loaded)"):
        sample_into_player(page)
    page.get_by_role("tab", name="Step through").click()


def test_play_draws_30_frames_a_second_and_asks_the_server_nothing(page):
    ensure_player(page)
    requests = []

    def count(request):
        requests.append(request.url)

    page.on("request", count)
    page.locator("#step-player .px-speed").select_option(label="1 pixel a frame")
    page.keyboard.press("Home")
    frames0, step0, t0 = page.evaluate(f"() => [{player_hook(page)}.frames, {player_hook(page)}.step, performance.now()]")
    page.locator("#step-player .px-play").click()
    page.wait_for_function("() => document.querySelector('#step-player .px-play').innerText === 'Pause'")
    assert page.locator("#step-player .px-playing-badge").is_visible()
    page.wait_for_timeout(3000)
    frames1, step1, t1 = page.evaluate(f"() => [{player_hook(page)}.frames, {player_hook(page)}.step, performance.now()]")
    shot(page, "step-playing")
    page.keyboard.press("Space")
    page.remove_listener("request", count)
    assert not page.evaluate(f"() => {player_hook(page)}.playing")
    fps, steps_per_second = (frames1 - frames0) / (t1 - t0) * 1000, (step1 - step0) / (t1 - t0) * 1000
    (ARTIFACTS / "player-play.txt").write_text(f"frames/s {fps:.1f}\nsteps/s {steps_per_second:.1f}\nrequests {len(requests)}\n")
    assert fps >= 30 and steps_per_second >= 30, (fps, steps_per_second)
    assert requests == []


def test_the_fastest_speed_draws_a_whole_image_in_about_five_seconds(page):
    page.locator("#step-player .px-speed").select_option(label="whole image in 5 s")
    page.keyboard.press("Home")
    page.locator("#step-player .px-play").click()
    start = time.monotonic()
    page.wait_for_function(f"() => !{player_hook(page)}.playing && {player_hook(page)}.step === 784", timeout=20_000)
    assert 3.5 <= time.monotonic() - start <= 9


def test_the_keyboard_steps_rows_plays_and_jumps(page):
    page.locator("#step-player .px-caption").click()  # focus on the page, not in a box
    keys = [("Home", 0), ("ArrowRight", 1), ("ArrowRight", 2), ("Shift+ArrowRight", 30), ("Shift+ArrowLeft", 2),
            ("ArrowLeft", 1), ("End", 784), ("ArrowLeft", 783), ("Home", 0)]
    for key, expected in keys:
        page.keyboard.press(key)
        assert step_of(page) == expected, key
    page.keyboard.press("Space")
    page.wait_for_function(f"() => {player_hook(page)}.step > 10")
    page.keyboard.press("Space")
    assert not page.evaluate(f"() => {player_hook(page)}.playing")
    page.locator("#step-player .px-step").fill("300")
    page.locator("#step-player .px-step").press("Enter")
    assert step_of(page) == 300
    page.keyboard.press("ArrowRight")  # Enter hands the keys back to the player, as its guide says
    page.keyboard.press("PageDown")
    assert step_of(page) == 302
    page.keyboard.press("Shift+ArrowLeft")
    assert step_of(page) == 274
    go_to_step(page, 300)
    page.wait_for_function("() => document.querySelector('#step-player .px-readout').innerText.startsWith('Row 10, column 20.')")
    shot(page, "step-300")


def reference_reshape(logp, t, k=None, p=None):
    """The sampler's definition: softmax(logits / T); top-k keeps the k largest (ties: lower bin first); then
    top-p keeps the shortest run of those, most probable first, whose probability reaches p; renormalise.
    With a core that has top-k and top-p, its own ``softmax_at`` is the reference."""
    if "top_k" in inspect.signature(softmax_at).parameters:
        return softmax_at(np.asarray(logp, dtype=np.float32), t, k, p).astype(np.float64)
    probs = np.exp(logp / t - np.max(logp / t))
    probs /= probs.sum()
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))[: k or len(probs)]
    keep, before = [], 0.0
    for i in order:
        if keep and p is not None and before >= p:
            break
        keep.append(i)
        before += probs[i]
    out = np.array([probs[i] if i in keep else 0.0 for i in range(len(probs))])
    return out / out.sum()


def test_a_top_k_sample_plays_with_its_own_bars(page):
    """Sampled with top-k 3 and top-p 0.9: at every step the page shows at most 3 bins, the chosen one among them."""
    page.get_by_role("tab", name="Step through").click()
    controls = page.locator("#tab-step")
    controls.locator(".top-k input").fill("3")
    controls.locator(".top-p input").fill("0.9")
    sample_into_player(page)
    for at in (0, 150, 300, 450, 600, 783):
        page.locator("#step-player .px-step").fill(str(at))
        page.locator("#step-player .px-step").press("Enter")
        shown = page.evaluate(f"() => {player_hook(page)}.sampled()")
        kept = [b for b, p in enumerate(shown["probs"]) if p > 0]
        assert shown["top_k"] == 3 and shown["top_p"] == 0.9
        assert 1 <= len(kept) <= 3 and shown["token"] in kept and abs(sum(shown["probs"]) - 1) < 1e-6
    legend = page.locator("#step-player .px-caption").inner_text()
    assert "top-k 3" in legend and "top-p 0.9" in legend
    controls.locator(".top-k input").fill("0")
    controls.locator(".top-p input").fill("1")


def test_the_bars_reshape_exactly_as_the_sampler_defines_it(page):
    ensure_player(page)
    rng = np.random.default_rng(0)
    cases = [(rng.normal(scale=3, size=16), t, k, p) for t in (0.5, 1, 1.7) for k, p in ((None, None), (3, None),
                                                                                          (None, 0.8), (5, 0.5), (1, None))]
    cases.append((np.log(np.array([0.25, 0.25, 0.25, 0.25] + [1e-9] * 12)), 1.0, 2, None))  # ties: bins 0 and 1
    cases.append((np.log(np.array([0.5, 0.3, 0.2] + [1e-12] * 13)), 1.0, None, 0.45))  # one bin reaches p
    for logp, t, k, p in cases:
        got = page.evaluate(f"([l, t, k, p]) => Array.from({player_hook(page)}.reshape(l, t, k, p))", [logp.tolist(), t, k, p])
        assert np.allclose(got, reference_reshape(logp, t, k, p), atol=1e-5), (t, k, p)


def test_the_players_top_k_box_refuses_what_is_not_a_number_of_bins(page):
    box = page.locator("#step-player .px-k")
    before = box.input_value()  # the sampled top-k (or "" for off)
    for bad in ("-1", "3.7", "99"):
        box.fill(bad)
        box.press("Tab")  # "change": the value is judged when the box is left
        status = page.locator("#step-player .px-status").inner_text()
        assert "top-k must be a whole number of bins from 1 to 16" in status and bad in status
        assert box.input_value() == before  # undone, not used as something else
    box.fill("2" if before != "2" else "5")  # a good value (another one: an unchanged box fires no "change")
    box.press("Tab")
    assert page.locator("#step-player .px-status").inner_text() == ""
    box.fill(before)
    box.press("Tab")


def test_a_bar_click_asks_what_if_and_both_futures_play_side_by_side(page, app_server):
    page.keyboard.press("Home")
    for _ in range(10):
        page.keyboard.press("Shift+ArrowRight")
    at = step_of(page)
    bars = page.locator("#step-player .px-bars").first
    box = bars.bounding_box()
    old = page.evaluate(f"() => {player_hook(page)}.loaded")
    left, right = 40, 8  # the chart's margins in player.js
    bars.click(position={"x": left + 12.5 * (box["width"] - left - right) / 16, "y": box["height"] / 2})
    page.wait_for_function(f"old => {player_hook(page)}.loaded !== old", arg=old)
    assert page.locator("#step-player .px-panel").count() == 2
    assert step_of(page) == at  # the futures open at the forced step
    text = page.locator("#step-player .px-caption").inner_text()
    assert f"What if step {at}" in text and "bin 12" in text
    page.locator("#step-player .px-play").click()
    page.wait_for_timeout(1200)
    page.evaluate("() => window.scrollTo(0, 0)")
    shot(page, "what-if")
    page.keyboard.press("Space")
    page.locator("#step-player .px-back").click()
    assert page.locator("#step-player .px-panel").count() == 1


def test_presentation_mode_fills_the_screen(page):
    page.locator("#step-player .px-present").click()
    player = page.locator("#step-player .px-player")
    box = player.bounding_box()
    assert box["width"] >= 1270 and box["height"] >= 710
    page.wait_for_timeout(300)  # one refit
    canvas = page.locator("#step-player .px-canvas").bounding_box()
    assert canvas["height"] >= 600 and canvas["width"] >= 570  # readable from the back row (issue 20)
    for selector in (".px-bars", ".px-entropy-map", ".px-surprise-map", ".px-reshape", ".px-caption", ".px-slider"):
        inside = page.locator(f"#step-player {selector}").first.bounding_box()
        assert inside["x"] >= canvas["x"] + canvas["width"] and inside["y"] + inside["height"] <= 720, selector
    maps = page.locator("#step-player .px-entropy-map").bounding_box()
    assert min(maps["width"], maps["height"]) >= 180  # the maps scale with the screen (112 px before)
    shot(page, "present")
    page.keyboard.press("Escape")
    assert player.bounding_box()["width"] < 1270


WHAT_IF_LINK = "?tab=step&model=v3&digit=3&seed=1232365067&step=600&whatif=500:15"
PLAYER_LAYOUT = """() => { const root = document.querySelector('#step-player .px-player'), caption = root.querySelector('.px-caption');
  const hook = window.pixelarPlayers.find(p => p.loaded), style = getComputedStyle(caption);
  return {two: root.classList.contains('px-two'), text: caption.innerText,
    caption: {scroll: [caption.scrollWidth, caption.scrollHeight], client: [caption.clientWidth, caption.clientHeight],
              overflow: style.textOverflow, space: style.whiteSpace},
    panels: [...root.querySelectorAll('.px-panel')].map((panel, i) => ({
      canvas: panel.querySelector('.px-canvas').getBoundingClientRect().width,
      bars: panel.querySelector('.px-bars').clientWidth, labels: hook.binLabels(i),
      mapsBottom: panel.querySelector('.px-maps').getBoundingClientRect().bottom,
      map: panel.querySelector('.px-entropy-map').getBoundingClientRect().toJSON(),
      readoutTop: panel.querySelector('.px-readout').getBoundingClientRect().top}))}; }"""


def player_layout(page) -> dict:
    page.wait_for_timeout(300)  # a refit and a frame after the last change
    return page.evaluate(PLAYER_LAYOUT)


def check_readable(layout: dict) -> None:
    """The caption is whole (wrapped, not cut or ended in an ellipsis); each panel's bin numbers do not touch and stay
    under the bars; the maps end above the readout."""
    caption = layout["caption"]
    assert caption["scroll"][0] <= caption["client"][0] and caption["scroll"][1] <= caption["client"][1] + 1, caption
    assert caption["overflow"] != "ellipsis" and caption["space"] != "nowrap", caption
    assert layout["text"].startswith("What if step 500") and layout["text"].endswith("because of that one pixel.")
    for panel in layout["panels"]:
        labels = panel["labels"]
        assert len(labels) >= 4 and labels[0][0] == 0, labels
        assert all(right + 2 <= left for (_, _, right), (_, left, _) in zip(labels, labels[1:])), labels
        assert labels[0][1] >= 0 and labels[-1][2] <= panel["bars"], (labels, panel["bars"])
        assert panel["mapsBottom"] <= panel["readoutTop"] + 0.5, panel


@pytest.mark.parametrize("viewport", [PROJECTOR, PHONE], ids=["projector", "phone"])
def test_a_what_if_keeps_its_caption_bin_numbers_and_pictures_readable(browser, app_server, viewport):
    """Issue 20: two futures side by side, on a projector and a phone: the whole caption, bin numbers that do not run
    together, and each future's canvas at least half as wide as the one image's."""
    page = open_app(browser, app_server.url + WHAT_IF_LINK, viewport)
    page.wait_for_function("() => document.querySelector('#step-player .px-player')?.classList.contains('px-two')")
    name = "projector" if viewport is PROJECTOR else "phone"
    two = player_layout(page)
    assert two["two"] and len(two["panels"]) == 2
    check_readable(two)
    if viewport is PHONE:  # the futures stack: each takes the width, its maps as large as one image's (were 110 px)
        assert all(min(panel["map"]["width"], panel["map"]["height"]) >= 120 for panel in two["panels"]), two["panels"]
    page.evaluate("() => document.querySelector('#step-player .px-player').scrollIntoView()")
    shot(page, f"what-if-{name}")
    page.locator("#step-player .px-back").click()
    one = player_layout(page)
    assert not one["two"] and len(one["panels"]) == 1
    check_readable(one)
    if viewport is PROJECTOR:
        assert [label[0] for label in one["panels"][0]["labels"]] == list(range(16))  # room for every bin number
    single = one["panels"][0]["canvas"]
    assert all(panel["canvas"] >= single / 2 for panel in two["panels"]), (single, two["panels"])
    page.locator("#step-player .px-back").click()
    if viewport is PROJECTOR:  # Present with two futures: readable too, the canvases larger than on the page
        page.locator("#step-player .px-present").click()
        presented = player_layout(page)
        assert presented["two"]
        check_readable(presented)
        assert all(shown["canvas"] >= max(single, paged["canvas"]) for shown, paged in zip(presented["panels"], two["panels"]))
        for canvas in page.locator("#step-player .px-canvas").all():
            assert inside_viewport(page, canvas)
        shot(page, "what-if-present")
        page.keyboard.press("Escape")
    page.context.close()


def test_the_gif_marks_the_current_pixel(page):
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as a GIF").click()
    with Image.open(download.value.path()) as gif:
        assert gif.format == "GIF" and gif.n_frames > 50
        gif.seek(20)
        pixels = np.asarray(gif.convert("RGB"))
    near = lambda colour: (np.abs(pixels.astype(int) - colour).max(-1) <= 8).any()  # noqa: E731  (GIF palette)
    assert near(render.CURRENT) and near(render.UNSEEN)


# ---- Step through: where it looked ----


def choose_step_model(page, name: str) -> None:
    page.locator("#tab-step").get_by_label("Model").first.click()
    page.get_by_role("option", name=re.compile(f"^{name} · pretrained")).click()


def go_to_step(page, step: int) -> None:
    page.locator("#step-player .px-step").fill(str(step))
    page.locator("#step-player .px-step").press("Enter")


def looked_map(page, panel: int = 0) -> np.ndarray:
    """The map the page received for the step on screen (each pixel ÷ the step's largest)."""
    page.wait_for_function(f"() => {player_hook(page)}.looked({panel}) != null")
    got = page.evaluate(f"() => {player_hook(page)}.looked({panel})")
    assert "error" not in got, got
    return np.array(got["values"])


DOTS = """(share) => { const c = document.querySelector('#step-player .px-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, Math.floor(c.height * share)).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] === 124 && d[i + 1] === 240 && d[i + 2] === 60) n++;
  return n; }"""  # pixels of the big canvas's top ``share`` in the where-it-looked dot colour


def test_where_it_looked_v4_sees_the_whole_past_v3_only_its_window_and_play_asks_nothing(page):
    page.get_by_role("tab", name="Step through").click()
    choose_step_model(page, "V4")
    sample_into_player(page)
    assert page.locator("#step-player .px-caption").inner_text().startswith("v4")
    requests = []

    def count(request):
        requests.append(request.url)

    go_to_step(page, 400)  # first, so that no map is asked for the step it starts on (a race on a slow machine)
    page.on("request", count)
    page.locator("#step-player .px-look").check()
    v4 = looked_map(page)
    assert page.locator("#step-player .px-readout").inner_text().startswith("Row 14, column 8. The model sees all 400 earlier pixels")
    assert v4.max() == 1 and not v4[400:].any()
    assert (v4[: 400 - 28] > 0).any()  # further back than any 28-pixel window: the whole past
    page.wait_for_function(f"() => ({DOTS})(1) > 0")  # the big canvas marks it too (the largest: a big dot)
    assert len(requests) == 1 and "component_server" in requests[0]
    page.evaluate("() => window.scrollTo(0, 0)")
    for part in ["#step-player .px-slider", "#step-player .px-canvas", "#step-player .px-bars",
                 "#step-player .px-entropy-map", "#step-player .px-looked-map", "#step-player .px-play",
                 "#step-player .px-look"]:
        assert inside_viewport(page, page.locator(part).first), part
    shot(page, "where-it-looked-v4")

    page.evaluate("() => { for (let i = 0; i < 5; i++) document.dispatchEvent("
                  "new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true})); }")  # 5 steps at once
    looked_map(page)
    assert step_of(page) == 405 and len(requests) == 2  # one for step 405, none for the steps passed through

    requests.clear()
    page.locator("#step-player .px-speed").select_option(label="1 row a second")
    page.locator("#step-player .px-play").click()
    page.wait_for_timeout(2000)
    shot(page, "where-it-looked-playing")  # the last map, dimmed: "pause to see where it looked"
    page.remove_listener("request", count)
    page.keyboard.press("Space")
    assert requests == []  # Play with the toggle on asks nothing

    choose_step_model(page, "V3")
    sample_into_player(page)
    go_to_step(page, 400)
    v3 = looked_map(page)
    assert v3.max() == 1 and not v3[: 400 - 28].any() and not v3[400:].any()  # only its 28-pixel window
    page.wait_for_timeout(200)  # a few frames
    assert page.evaluate(DOTS, 1) > 0 and page.evaluate(DOTS, 1 / 3) == 0  # none far above its window
    shot(page, "where-it-looked-v3")

    bars = page.locator("#step-player .px-bars").first
    box = bars.bounding_box()
    old = page.evaluate(f"() => {player_hook(page)}.loaded")
    bars.click(position={"x": 40 + 3.5 * (box["width"] - 48) / 16, "y": box["height"] / 2})  # what if bin 3
    page.wait_for_function(f"old => {player_hook(page)}.loaded !== old", arg=old)
    go_to_step(page, 450)
    original, what_if = looked_map(page, 0), looked_map(page, 1)  # each future has its own map
    assert not original[: 450 - 28].any() and not what_if[: 450 - 28].any()
    page.evaluate("() => window.scrollTo(0, 0)")
    shot(page, "where-it-looked-what-if")
    page.locator("#step-player .px-back").click()
    page.locator("#step-player .px-look").uncheck()


# ---- Explore ----


def test_explore_completes_a_real_digit_and_maps_surprise(page, app_server):
    page.get_by_role("tab", name="Explore").click()
    wait_for_new_image(page, "explore-real", None)
    page.wait_for_function("() => document.querySelector('#explore-class input').value === '0'")  # #0's class
    page.locator("#explore-class input").click()
    page.get_by_role("option", name="3", exact=True).click()
    page.get_by_role("button", name="Random image of this class").click()
    page.wait_for_function("() => document.querySelector('#explore-real-caption').innerText.includes('a 3.')")
    page.locator("#keep-rows input").fill("10")
    page.locator("#complete-button").click()
    wait_for_new_image(page, "complete-image", None)
    page.wait_for_function("() => document.querySelector('#complete-caption').innerText.includes('first 10 rows')")
    assert inside_viewport(page, page.locator("#complete-button"))
    shot(page, "complete")

    page.get_by_role("tab", name="Surprise map").click()
    wait_for_new_image(page, "surprise-image", None)
    assert "Fewest bits" in caption(page, "surprise-caption") and " at K " in caption(page, "surprise-caption")
    shot(page, "surprise")

    page.get_by_role("tab", name="Complete it").click()
    page.locator("#keep-rows input").fill("99")
    page.locator("#complete-button").click()
    page.get_by_text("Real rows to keep must be a whole number from 0 to 28, got 99").first.wait_for()
    assert page.locator("#keep-rows input").input_value() == "99"  # refused, not clamped to 28
    page.locator("#keep-rows input").fill("14")

    box = page.locator("#explore-index input")
    assert page.locator("#explore-class input").input_value() == "3"  # the class box follows the random 3
    close_messages(page)
    box.fill("")  # an emptied box raises nothing
    box.press("Enter")
    page.wait_for_timeout(1000)
    assert page.get_by_text("Held-out image number must").count() == 0
    box.press_sequentially("6000", delay=200)  # 600 on the way is not refused on its own: one message, when left
    box.press("Enter")
    page.get_by_text("Held-out image number must be a whole number from 0 to 499, got 6000").first.wait_for()
    page.wait_for_timeout(2000)  # a second message would have come by now
    assert " ".join(page.locator(".toast-body").all_inner_texts()).count("Held-out image number must") == 1
    close_messages(page)
    box.fill("0")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('#explore-real-caption').innerText.includes('#0 of mnist-5k: a 0.')")
    page.wait_for_function("() => document.querySelector('#explore-class input').value === '0'")  # image and box agree
    assert "ComponentProcessingError" not in app_server.output()


# ---- Train ----


def set_budget(page, steps: int, batch_size: int) -> None:
    if not page.get_by_label("Steps", exact=True).is_visible():
        page.get_by_text("Steps, batch size, learning rate").click()
    page.get_by_label("Steps", exact=True).fill(str(steps))
    page.get_by_label("Batch size", exact=False).fill(str(batch_size))


def status(page) -> str:
    return page.locator("#train-status").inner_text()


def test_the_train_tab_says_which_data_set_it_uses(page):
    page.get_by_role("tab", name="Train").click()
    page.get_by_text("Using mnist-5k: 4,500 training + 500 held-out images").wait_for()
    page.get_by_text("This run: 1,000 steps").wait_for()  # the expected time, measured on this server
    assert inside_viewport(page, page.locator("#train-start"))
    assert page.locator("#train-stop").is_disabled()  # nothing trains
    shot(page, "train")
    page.get_by_label("Data set").click()
    page.get_by_role("option", name="MNIST, 70,000 digits").click()
    page.wait_for_function("() => /could not be loaded|Using mnist:/.test(document.body.innerText)")
    if "Using mnist:" not in page.locator("body").inner_text():  # offline (tests, CI): the visible fallback
        page.get_by_text("could not be loaded or downloaded here, so this uses mnist-5k instead").wait_for()
    page.get_by_label("Data set").click()
    page.get_by_role("option", name="MNIST, 5,000 digits").click()
    page.get_by_text("Using mnist-5k").wait_for()


WATCH_PLOT = """() => { window.plotPictures = new Set();
  const note = () => document.querySelectorAll('#train-plot img').forEach(img => window.plotPictures.add(img.src));
  new MutationObserver(note).observe(document.querySelector('#train-plot'), {subtree: true, childList: true,
    attributes: true, attributeFilter: ['src']}); }"""


def test_a_tiny_training_run_plots_live_and_its_model_reaches_generate(page):
    page.get_by_role("tab", name="Train").click()
    set_budget(page, 150, 64)
    page.evaluate(WATCH_PLOT)  # sees every picture the plot shows, however fast they come
    page.locator("#train-start").click()
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('samples/s')")
    assert page.locator("#train-stop").is_enabled()
    page.wait_for_function("() => document.querySelector('#train-status').innerText.startsWith('Done')")
    assert page.evaluate("() => window.plotPictures.size") >= 2, "the plot never updated during the run"
    page.wait_for_function("() => document.querySelector('#train-stop button, #train-stop').disabled")
    assert "my-v3-1 is ready" in status(page)
    assert chrome_over_picture(page, "train-plot") == [] and chrome_over_picture(page, "train-samples", 2) == []
    page.evaluate("() => window.scrollTo(0, 0)")
    shot(page, "train-done")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the trained model (.safetensors)").click()
    model = pixelar.load_checkpoint(download.value.path())
    assert model.name == "v3" and model.metadata["steps"] == 150 and model.metadata["dataset"] == "mnist-5k"

    page.get_by_role("tab", name="Generate").click()
    page.get_by_label("Model").first.click()
    page.get_by_role("option", name="my-v3-1 · trained here").click()
    old = image_src(page, "generate-grid")
    page.locator("#generate-button").click()
    wait_for_new_image(page, "generate-grid", old)
    assert "samples from my-v3-1" in caption(page, "generate-caption")
    shot(page, "generate-trained")


def cost_line(page) -> str:
    return page.locator("#train-cost").inner_text()


def test_context_and_bins_are_knobs_with_their_cost_and_v4_trains_on_whole_images(browser, app_server):
    page = open_app(browser, app_server.url)
    page.get_by_role("tab", name="Train").click()
    page.get_by_text("This run: 1,000 steps").wait_for()
    page.locator("#train-context").get_by_text("7", exact=True).click()
    page.wait_for_function("() => document.querySelector('#train-cost').innerText.includes('context 7 · K 16: 1,265,856')")
    page.get_by_text("(image, pixel) pairs ≈").wait_for()  # measured for this shape
    assert "(context 28 · K 16: 1,609,920)" in cost_line(page)  # beside the seed's shape
    page.locator("#train-k input").fill("300")
    page.wait_for_function("() => document.querySelector('#train-cost').innerText.includes('from 2 to 256, got 300')")
    page.locator("#train-k input").fill("3.7")  # not rounded to 3 or 4
    page.wait_for_function("() => document.querySelector('#train-cost').innerText"
                           ".includes('K bins must be a whole number from 2 to 256, got 3.7')")
    page.locator("#train-k input").fill("8")
    page.wait_for_function("() => document.querySelector('#train-cost').innerText.includes('context 7 · K 8')")
    shot(page, "train-knobs")

    page.locator("#train-model").get_by_text("V4", exact=True).click()
    page.wait_for_function("() => document.querySelector('#train-cost').innerText.includes('V4 · K 8: ')")
    assert not page.locator("#train-context").is_visible()  # V4 sees the whole past: no context knob
    page.get_by_text("Quick · 288 images").wait_for()
    set_budget(page, 6, 2)
    assert page.get_by_label("Batch size (whole images per step)").input_value() == "2"
    page.locator("#train-start").click()
    page.wait_for_function("() => document.querySelector('#train-status').innerText.startsWith('Done')")
    assert "images in" in status(page) and "my-v4-1 is ready" in status(page)
    page.get_by_role("tab", name="Generate").click()
    page.get_by_label("Model").first.click()
    page.get_by_role("option", name="my-v4-1 · trained here").click()  # "· 0.xx bits/px at K 8"
    page.locator("#generate-button").click()
    wait_for_new_image(page, "generate-grid", None)
    assert "samples from my-v4-1" in caption(page, "generate-caption")


def test_users_train_one_at_a_time_and_keep_their_models_to_themselves(browser, app_server):
    alice, bob = open_app(browser, app_server.url), open_app(browser, app_server.url)
    for user in (alice, bob):
        user.get_by_role("tab", name="Train").click()
    set_budget(alice, 100_000, 32)
    alice.locator("#train-start").click()
    alice.wait_for_function("() => document.querySelector('#train-status').innerText.includes('samples/s')", timeout=240_000)

    set_budget(bob, 40, 32)
    bob.locator("#train-start").click()
    bob.get_by_text("Waiting for another user's training to finish").wait_for()
    bob.wait_for_function("() => document.querySelector('#train-status').innerText.includes('1 run ahead of yours')")
    bob.locator("#train-k input").fill("9")  # a shape not measured yet: its speed cannot be measured fairly now
    bob.wait_for_function("() => document.querySelector('#train-cost').innerText"
                          ".endsWith('Expected times appear when the server is not training.')")
    bob.evaluate("() => window.scrollTo(0, 0)")
    shot(bob, "train-waiting")

    bob.get_by_role("tab", name="Generate").click()  # generation keeps answering while Alice trains
    bob.locator("#generate-button").click()
    wait_for_new_image(bob, "generate-grid", None)
    assert status(alice).startswith("Training V3")

    alice.locator("#train-stop").click()
    alice.wait_for_function("() => document.querySelector('#train-status').innerText.startsWith('Stopped after')")
    assert "my-v3-1 is ready" in status(alice)  # stopping keeps what was trained
    bob.get_by_role("tab", name="Train").click()
    bob.wait_for_function("() => document.querySelector('#train-status').innerText.startsWith('Done after 40 steps')")
    bob.wait_for_function("() => document.querySelector('#train-cost').innerText.includes('context 28 · K 9') && "
                          "document.querySelector('#train-cost').innerText.includes('This run: ')")  # the run ended

    carol = open_app(browser, app_server.url)
    carol.get_by_label("Model").first.click()
    assert carol.get_by_role("option").count() == 4  # the shipped V1 to V4 only
    assert carol.get_by_role("option", name="trained here").count() == 0


# ---- phone ----


def test_a_phone_reaches_every_tab_and_sees_slider_and_canvas_together(browser, app_server):
    phone = open_app(browser, app_server.url, PHONE)
    for name in ("Generate", "Step through", "Explore", "Draw", "Train"):
        assert inside_viewport(phone, phone.get_by_role("tab", name=name)), name  # not behind a "..." menu
    shot(phone, "phone-generate")
    sample_into_player(phone)
    phone.locator("#step-player .px-bar").scroll_into_view_if_needed()
    phone.evaluate("() => document.querySelector('#step-player .px-bar').scrollIntoView()")
    assert inside_viewport(phone, phone.locator("#step-player .px-slider"))
    assert inside_viewport(phone, phone.locator("#step-player .px-canvas").first)
    shot(phone, "phone-player")
    phone.locator("#step-player .px-look").check()
    go_to_step(phone, 400)
    looked_map(phone)
    phone.evaluate("() => document.querySelector('#step-player .px-maps').scrollIntoView({block: 'center'})")
    assert inside_viewport(phone, phone.locator("#step-player .px-looked-map"))
    shot(phone, "phone-where-it-looked")
    for name in ("Explore", "Train"):
        phone.get_by_role("tab", name=name).click()
        phone.wait_for_timeout(500)
        shot(phone, f"phone-{name.lower()}")


# ---- a data set with other class names ----


@pytest.fixture
def fashion_checkpoint(app_checkpoints):
    """A tiny V3 trained on Fashion-MNIST, dropped into the running app's checkpoint folder (and removed after)."""
    try:
        dataset = pixelar.load_dataset("fashion")
    except pixelar.DataUnavailable as error:
        pytest.skip(f"no Fashion-MNIST here: {error}")
    model = pixelar.build_model("v3", hidden=32)
    pixelar.train(model, dataset, pixelar.TrainConfig(steps=10, batch_size=128, eval_every=0, eval_images=2))
    path = app_checkpoints / "v3-fashion.safetensors"
    pixelar.save_checkpoint(model, path, dataset="fashion", class_names=list(dataset.class_names))
    yield path
    path.unlink()


def test_a_fashion_model_speaks_in_class_names_and_the_surprise_map_follows_it(browser, app_server, fashion_checkpoint):
    page = open_app(browser, app_server.url)
    page.get_by_label("Model").first.click()
    page.get_by_role("option", name="v3-fashion (V3) · pretrained").click()
    page.get_by_label("Trouser").first.check()
    page.locator("#generate-button").click()
    page.wait_for_function("() => document.querySelector('#generate-caption').innerText.includes('“Trouser”')")

    page.get_by_role("tab", name="Explore").click()
    page.get_by_role("tab", name="Surprise map").click()
    page.wait_for_function("() => document.querySelector('#surprise-caption').innerText.includes('mnist-5k')")
    page.locator("#explore-model input").click()
    page.get_by_role("option", name="v3-fashion (V3) · pretrained").click()
    page.wait_for_function("() => document.querySelector('#explore-real-caption').innerText.includes('of fashion')")
    page.wait_for_function("() => document.querySelector('#surprise-caption').innerText.includes('trained on fashion')")
    page.get_by_role("tab", name="Complete it").click()
    page.locator("#complete-button").click()
    page.wait_for_function(
        "names => names.some(n => document.querySelector('#complete-caption').innerText.includes(`as a ${n}`)"
        " || document.querySelector('#complete-caption').innerText.includes(`as an ${n}`))",
        arg=list(pixelar.data.class_names("fashion")),
    )
    shot(page, "fashion")


def test_the_whole_tour_raised_no_page_error_and_no_server_traceback(app_server):
    assert PAGE_ERRORS == []
    log = app_server.output()
    assert "Traceback" not in log and "ComponentProcessingError" not in log, log[-3000:]
