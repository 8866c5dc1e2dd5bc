"""One screen per tab, in real Chromium: at a projector's 1280x720 every control of every tab is on screen without
scrolling (the closed "What to try here" help and the class board below the Train tab aside); on a phone's 390x844
the page scrolls to a result when it arrives, since it lands far below its button."""
import pytest

from demo.lesson import LESSON, step_href
from test_browser import CHROMIUM, PHONE, PROJECTOR, browser, open_app, sample_into_player, shot  # noqa: F401
from test_browser_links import loaded_player

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

TABS = {"Generate": "tab-generate", "Step through": "tab-step", "Explore": "tab-explore", "Draw": "tab-draw",
        "Train": "tab-train"}
TABS_BY_LINK = {"generate": "tab-generate", "step": "tab-step", "explore": "tab-explore", "draw": "tab-draw", "train": "tab-train"}
# every visible control of a tab that is off screen: [tag, text, top, bottom]
OFF_SCREEN = """(id) => {
  const off = [];
  for (const el of document.getElementById(id).querySelectorAll('button, input, select, textarea, canvas')) {
    if (el.closest('.guided-tour, #class-board')) continue;
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
    if (r.top < 0 || r.left < 0 || r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5)
      off.push([el.tagName, (el.innerText || el.getAttribute('aria-label') || el.name || '').slice(0, 30), r.top, r.bottom]);
  }
  return off;
}"""
# for each model picker on screen: how far its text runs past the left edge of its arrow (> 0: under the arrow)
UNDER_THE_ARROW = """(id) => [...document.getElementById(id).querySelectorAll('.model-picker')].filter(p => p.checkVisibility())
  .map(picker => {
    const input = picker.querySelector('input'), style = getComputedStyle(input), box = input.getBoundingClientRect();
    const pen = document.createElement('canvas').getContext('2d');
    pen.font = style.font;
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const end = box.left + parseFloat(style.paddingLeft) + Math.min(pen.measureText(input.value).width, room);
    return end - picker.querySelector('.icon-wrap').getBoundingClientRect().left;
  })"""


def test_every_control_of_every_tab_is_on_a_projectors_screen(browser, app_server):
    page = open_app(browser, app_server.url, PROJECTOR)
    for name, elem_id in TABS.items():
        page.get_by_role("tab", name=name).click()
        page.locator(f"#{elem_id}").wait_for()
        page.wait_for_timeout(500)  # the tab's own refresh
        assert page.evaluate("() => window.scrollY") == 0
        assert page.evaluate(OFF_SCREEN, elem_id) == [], name
        assert all(overlap <= 0 for overlap in page.evaluate(UNDER_THE_ARROW, elem_id)), name
    sample_into_player(page)  # the player's own controls too, with a trace loaded
    off = page.evaluate(OFF_SCREEN, "tab-step")
    shot(page, "step-loaded")
    assert off == []


@pytest.mark.parametrize("number", [1, 8, 12])  # V1's grid (with its note under Digit), a what-if, Draw
def test_in_the_lesson_the_bar_takes_the_headers_place_and_every_control_stays_on_screen(browser, app_server, number):
    page = open_app(browser, app_server.url + step_href(number), PROJECTOR)
    bar = page.locator("#lesson .lesson-bar")
    bar.wait_for()
    assert not page.locator("#app-header").is_visible() and bar.bounding_box()["y"] < 40  # in the header's row
    tab = TABS_BY_LINK[LESSON[number - 1].link["tab"]]
    if tab == "tab-generate":
        page.locator("#generate-grid img").wait_for()  # the link's picture
    elif tab == "tab-step":
        loaded_player(page)
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.scrollY") == 0
    assert page.evaluate(OFF_SCREEN, tab) == [], number
    if "whatif" in LESSON[number - 1].link:  # the two-panel Present keeps the lesson's bar, and every panel fits
        page.locator("#step-player .px-present").click()
        page.locator("#step-player .px-lesson").get_by_text(LESSON[number - 1].title).wait_for()
        page.wait_for_timeout(300)  # one refit
        boxes = [page.locator(f"#step-player {part}").nth(panel).bounding_box()
                 for part in (".px-canvas", ".px-bars", ".px-maps") for panel in (0, 1)]
        assert all(box["y"] + box["height"] <= 720 for box in boxes) and boxes[0]["height"] >= 400, boxes
        shot(page, "lesson-what-if-present")


def test_a_phone_scrolls_to_the_result_when_it_arrives(browser, app_server):
    page = open_app(browser, app_server.url, PHONE)
    page.locator("#generate-button").click()
    grid = page.locator("#generate-grid img")
    grid.wait_for()
    page.wait_for_function("() => { const r = document.querySelector('#generate-grid img').getBoundingClientRect();"
                           " return r.top >= -1 && r.top < innerHeight * 0.55; }")  # scrolled to (as far as the page goes)
    shot(page, "phone-generate-result")
    page.evaluate("() => window.scrollTo(0, 0)")
    sample_into_player(page)
    page.wait_for_function("() => { const r = document.querySelector('#step-player').getBoundingClientRect();"
                           " return r.top >= -1 && r.top < innerHeight * 0.55; }")


def test_present_fills_the_projector_with_generates_pictures(browser, app_server):
    page = open_app(browser, app_server.url, PROJECTOR)
    page.locator("#generate-button").click()
    page.locator("#generate-grid img").wait_for()
    page.locator("#generate-present").click()
    page.wait_for_function("() => document.querySelector('#generate-result').classList.contains('presenting')")
    page.wait_for_timeout(300)
    grid = page.locator("#generate-grid img").bounding_box()
    assert grid["height"] >= 600, grid  # was 485 beside the controls
    shot(page, "generate-present")
    old = page.evaluate("() => document.querySelector('#generate-grid img').src")
    page.locator("#strip-button").evaluate("button => button.click()")  # under the presented column: clicked in the page
    page.wait_for_function("old => { const img = document.querySelector('#generate-grid img');"
                           " return img && img.complete && img.src !== old; }", arg=old)
    strip = page.locator("#generate-grid img").bounding_box()
    assert strip["width"] >= 1100, strip  # four temperatures across the screen
    page.keyboard.press("Escape")
    page.locator("#generate-present").click()
    page.wait_for_function("() => !document.querySelector('#generate-result').classList.contains('presenting')")
