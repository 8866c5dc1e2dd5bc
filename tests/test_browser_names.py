"""Hostile names in real Chromium: the app serves a checkpoints folder holding a model whose file name is an HTML
tag and whose data set and class names carry HTML, markdown links, a javascript: URL, a right-to-left override, a
lone surrogate and LaTeX, beside skipped files with such names (one not UTF-8) and broken links. Generate, the
temperature strip, Step through and Explore use it; then models with Hypothesis-drawn names are added while the app
runs. No dialog may open, no element may be made from a name, and the page keeps working."""
import itertools
import re
import shutil

import pytest
from hypothesis import given, settings, strategies as st

from app_fixtures import serve
from test_browser import CHROMIUM, PROJECTOR, TIMEOUT_MS, browser, image_src, wait_for_new_image  # noqa: F401
from test_outside_text import ANY_TEXT, CRAFTED, CRAFTED_CLASSES, CRAFTED_DATASET, SKIPPED, fill_crafted_folder, v3_with

from pixelar.inputs import clean_text

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

# Records every element added to the page that a name could have made: an event-handler attribute, an image from
# "x" or example.com, a link to example.com or a javascript: URL.
WATCH = """
window.madeFromNames = [];
new MutationObserver((records) => {
  for (const record of records) for (const node of record.addedNodes) {
    if (node.nodeType !== 1) continue;
    for (const el of [node, ...node.querySelectorAll('*')]) {
      const src = el.getAttribute('src') || '', href = el.getAttribute('href') || '';
      if ([...el.attributes].some((a) => a.name.startsWith('on')) || src === 'x' || src.endsWith('/x')
          || /example\\.com|javascript:/i.test(src + ' ' + href)) window.madeFromNames.push(el.outerHTML.slice(0, 200));
    }
  }
}).observe(document, {childList: true, subtree: true});
"""
LABEL = re.compile(r"^<img src=x onerror=alert\(1\)> \(V3\) · pretrained")


@pytest.fixture(scope="module")
def crafted_folder(tiny_checkpoints, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crafted-checkpoints")
    for kind in ("v1", "v3"):
        shutil.copy(tiny_checkpoints / f"{kind}.safetensors", folder)
    fill_crafted_folder(folder)
    return folder


@pytest.fixture(scope="module")
def crafted_server(crafted_folder, tmp_path_factory):
    yield from serve(crafted_folder, tmp_path_factory.mktemp("crafted-app"))


def choose(page, tab: str, label: re.Pattern) -> None:
    page.locator(f"#{tab}").get_by_label("Model").first.click()
    page.get_by_role("option", name=label).click()


def watched_page(browser, url):
    """A new session on the app that records dialogs, page errors and (``madeFromNames``) elements made from names."""
    page = browser.new_context(viewport=PROJECTOR).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    dialogs, errors = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(WATCH)
    page.goto(url)
    page.get_by_role("tab", name="Generate").wait_for()
    return page, dialogs, errors


def made_from_names(page) -> list[str]:
    return page.evaluate("() => window.madeFromNames.concat([...document.querySelectorAll("
                         "'[onerror], [onmouseover], img[src=\"x\"], a[href*=\"example.com\"], a[href^=\"javascript\"]')]"
                         ".map((el) => el.outerHTML.slice(0, 200)))")


def test_crafted_names_are_shown_as_text_in_every_view(browser, crafted_server):  # noqa: F811
    page, dialogs, errors = watched_page(browser, crafted_server.url)

    notice = page.locator("#shelf-notice")
    notice.get_by_text("Skipped 4 file(s)").wait_for()
    for name in SKIPPED:
        assert f"{name}.safetensors" in notice.inner_text()

    # Generate: the crafted model, its classes in the picker, one of each and each hostile class alone
    generate = page.locator("#tab-generate")
    choose(page, "tab-generate", LABEL)
    classes = generate.locator(".class-picker")
    classes.get_by_text(CRAFTED_CLASSES[1], exact=True).wait_for()
    page.locator("#generate-button").click()
    grid = wait_for_new_image(page, "generate-grid", None)
    text = page.locator("#generate-caption").inner_text()
    assert CRAFTED in text and CRAFTED_DATASET in text and "one of each in turn" in text
    for label in range(7):
        name = clean_text(CRAFTED_CLASSES[label])
        classes.get_by_text(name, exact=True).click()
        page.locator("#generate-button").click()
        grid = wait_for_new_image(page, "generate-grid", grid)
        assert f"“{name}”" in page.locator("#generate-caption").inner_text()
    page.locator("#strip-button").click()
    grid = wait_for_new_image(page, "generate-grid", grid)
    assert f"{CRAFTED}, class “{CRAFTED_CLASSES[6]}”" in page.locator("#generate-caption").inner_text()
    assert page.locator("#generate-caption .katex").count() == 0  # a name's $$ is not LaTeX

    # Step through: the player's caption and readout, every redraw
    page.get_by_role("tab", name="Step through").click()
    choose(page, "tab-step", LABEL)
    page.locator("#tab-step .class-picker").get_by_text(CRAFTED, exact=True).click()
    page.locator("#step-sample").click()
    caption = page.locator("#step-player .px-caption")
    page.wait_for_function("() => (window.pixelarPlayers || []).some(p => p.loaded)")
    assert caption.inner_text().startswith(f"{CRAFTED} · class “{CRAFTED}”")
    page.locator("#step-player .px-step").fill("300")
    page.locator("#step-player .px-step").press("Enter")
    assert f"the class “{CRAFTED}”" in page.locator("#step-player .px-readout").inner_text()
    page.locator("#step-player .px-play").click()
    page.wait_for_timeout(1000)  # redraws
    page.locator("#step-player .px-play").click()

    # Explore: the model's data set cannot be had; the message names it as text
    page.get_by_role("tab", name="Explore").click()
    choose(page, "tab-explore", LABEL)
    page.get_by_text(f"unknown data set '{CRAFTED_DATASET}'").first.wait_for()

    # the page still works
    page.get_by_role("tab", name="Generate").click()
    choose(page, "tab-generate", re.compile("^V1 · pretrained"))
    page.locator("#generate-button").click()
    wait_for_new_image(page, "generate-grid", None)
    assert "samples** from" not in page.locator("#generate-caption").inner_text()  # Markdown rendered, not shown raw

    assert dialogs == [] and made_from_names(page) == [] and errors == []
    log = crafted_server.output()
    assert "Traceback" not in log and "not valid UTF-8" in log and "loop.safetensors cannot be read" in log


@pytest.fixture(scope="module")
def drawn_session(browser, crafted_server):  # noqa: F811
    return watched_page(browser, crafted_server.url)


DRAWN = itertools.count()


@settings(max_examples=4, deadline=None)
@given(dataset=ANY_TEXT, names=st.lists(ANY_TEXT.map(lambda s: s[:100]), min_size=10, max_size=10),
       label=st.integers(0, 9))
def test_drawn_names_are_harmless_in_generate_and_step_through(drawn_session, crafted_folder, dataset, names, label):
    """A checkpoint with Hypothesis-drawn names, written while the app runs, drawn from in Generate (one of each,
    then one class) and in Step through."""
    page, dialogs, errors = drawn_session
    name = f"drawn-{next(DRAWN)}"
    v3_with(crafted_folder / f"{name}.safetensors", dataset=dataset, class_names=names)
    page.get_by_role("tab", name="Step through").click()  # opening a tab re-reads the folder
    page.get_by_role("tab", name="Generate").click()
    choose(page, "tab-generate", re.compile(rf"^{name} \(V3\)"))
    for pick in (None, label):
        if pick is not None:
            page.locator("#tab-generate .class-picker input[type=radio]").nth(pick + 1).check()
        old = image_src(page, "generate-grid")
        page.locator("#generate-button").click()
        wait_for_new_image(page, "generate-grid", old)
        assert f"samples from {name}" in page.locator("#generate-caption").inner_text()

    page.get_by_role("tab", name="Step through").click()
    choose(page, "tab-step", re.compile(rf"^{name} \(V3\)"))
    page.locator("#tab-step .class-picker input[type=radio]").nth(label).check()
    old = page.evaluate("() => (window.pixelarPlayers || []).map(p => p.loaded).join()")
    page.locator("#step-sample").click()
    page.wait_for_function("old => (window.pixelarPlayers || []).map(p => p.loaded).join() !== old", arg=old)
    assert page.locator("#step-player .px-caption").inner_text().startswith(f"{name} · class “")
    assert dialogs == [] and made_from_names(page) == [] and errors == []
