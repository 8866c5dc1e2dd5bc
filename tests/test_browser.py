"""The real app in headless Chromium (Playwright): every tab, a generated grid, a scrubbed step slider, a tiny
training run whose loss plot gains points. Screenshots go to test-artifacts/ to be looked at."""
import re
import time
from pathlib import Path

import pytest
from PIL import Image

import pixelar
from pixelar import stepview

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TIMEOUT_MS = 90_000  # the CPUs may be shared with other work

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


def open_app(browser, url):
    """A new browser session (its own cookies and Gradio session) on the app."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    return page


@pytest.fixture(scope="module")
def page(browser, app_server):
    return open_app(browser, app_server.url)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)


def image_src(page, elem_id: str) -> str | None:
    images = page.locator(f"#{elem_id} img")
    return images.first.get_attribute("src") if images.count() else None


def wait_for_new_image(page, elem_id: str, old: str | None) -> str:
    page.wait_for_function(
        "([id, old]) => { const img = document.querySelector(`#${id} img`);"
        " return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src') !== old; }",
        arg=[elem_id, old],
    )
    return image_src(page, elem_id)


def test_generate_tab_draws_a_large_crisp_grid(page):
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_new_image(page, "generate-grid", None)
    grid = page.locator("#generate-grid img").first
    assert grid.evaluate("img => img.naturalWidth") >= 600
    assert grid.evaluate("img => getComputedStyle(img).imageRendering") == "pixelated"
    assert "16 samples" in page.locator("#generate-caption").inner_text()
    shot(page, "generate")


def test_compare_shows_v1_v2_v3_side_by_side(page):
    page.get_by_role("button", name="Compare V1 · V2 · V3").click()
    page.wait_for_function("() => document.querySelectorAll('#compare img').length === 3")
    assert "with the same digits" in page.locator("#compare").inner_text()
    shot(page, "compare")


def test_step_through_redraws_the_canvas_as_the_slider_moves(page):
    page.get_by_role("tab", name="Step through").click()
    page.get_by_role("button", name="Sample", exact=True).click()
    first = wait_for_new_image(page, "step-canvas", None)
    page.locator("#step-slider input[type=range]").fill("300")
    wait_for_new_image(page, "step-canvas", first)
    page.wait_for_function("() => document.querySelector('#step-caption').innerText.includes('Step 300: row 10, column 20')")
    shot(page, "step-300")

    page.locator("#step-temperature input[type=range]").fill("0.5")
    page.wait_for_function("() => document.querySelector('#step-caption').innerText.includes('At T = 0.5')")

    page.get_by_role("button", name="▶ Play").click()
    page.wait_for_function("() => Number(document.querySelector('#step-slider input[type=number]').value) > 300")
    page.get_by_role("button", name="Pause").click()
    shot(page, "step-playing")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download the drawing as a GIF").click()
    with Image.open(download.value.path()) as gif:
        assert gif.format == "GIF" and gif.n_frames > 50


def test_what_if_redraws_the_future_from_a_forced_bin(page):
    page.get_by_role("tab", name="Step through").click()
    page.locator("#step-slider input[type=range]").fill("300")
    page.wait_for_function("() => document.querySelector('#step-caption').innerText.includes('Step 300:')")
    page.locator("#what-if-bin").get_by_label("12", exact=True).check()
    first = wait_for_new_image(page, "what-if-image", None)
    page.wait_for_function("() => document.querySelector('#what-if-caption').innerText.includes('forced to bin 12')")

    bars = page.locator("#step-bars img").first  # a click on bar 3 of the chart forces bin 3
    box = bars.bounding_box()
    left, right = stepview.BAR_MARGINS[:2]
    x = (left + 3.5 * (520 - left - right) / 16) / 520 * box["width"]
    bars.click(position={"x": x, "y": box["height"] / 2})
    wait_for_new_image(page, "what-if-image", first)
    page.wait_for_function("() => document.querySelector('#what-if-caption').innerText.includes('forced to bin 3')")
    assert page.locator("#what-if-image img").first.evaluate("img => img.naturalWidth") >= 600
    page.locator("#what-if-image").first.scroll_into_view_if_needed()
    shot(page, "what-if")


def test_temperature_strip_and_the_guided_tour(page):
    page.get_by_role("tab", name="Generate").click()
    page.get_by_role("button", name="Temperature strip: 0.3 · 0.6 · 1 · 1.5").click()
    page.wait_for_function("() => document.querySelector('#temperature-strip img')?.naturalWidth >= 1000")
    assert "at four temperatures" in page.locator("#temperature-strip").inner_text()
    shot(page, "temperature-strip")
    page.get_by_text("What to try here").first.click()
    page.get_by_text("V1 draws streaks.").wait_for()
    page.get_by_text("V1 draws streaks.").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser-tour.png"))


def test_explore_completes_a_real_digit_and_maps_surprise(page):
    page.get_by_role("tab", name="Explore").click()
    wait_for_new_image(page, "explore-real", None)
    page.get_by_role("button", name="Random image of this class").click()
    page.wait_for_function("() => document.querySelector('#explore-real-caption').innerText.includes('a 3.')")
    page.locator("#keep-rows input[type=number]").fill("10")
    page.get_by_role("button", name="Complete", exact=True).click()
    wait_for_new_image(page, "complete-image", None)
    page.wait_for_function("() => document.querySelector('#complete-caption').innerText.includes('first 10 rows')")
    shot(page, "complete")

    page.get_by_role("tab", name="Surprise map").click()
    page.get_by_role("button", name="Measure each model's surprise").click()
    wait_for_new_image(page, "surprise-image", None)
    assert "Fewest bits in total" in page.locator("#surprise-caption").inner_text()
    shot(page, "surprise")

    page.locator("#explore-index input").fill("100000")
    page.locator("#explore-index input").press("Enter")
    page.get_by_text(re.compile("greater than maximum value 499|image number must be")).first.wait_for()  # no trace


def line_points(page) -> int:
    """Vertices of all lines in the loss plot (an SVG drawn by Vega)."""
    return page.locator("#train-plot .mark-line path").evaluate_all(
        "paths => paths.reduce((n, p) => n + (p.getAttribute('d').match(/[ML]/g) || []).length, 0)"
    )


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
    shot(page, "train")
    page.get_by_label("Data set").click()
    page.get_by_role("option", name="MNIST, 70,000 digits").click()
    page.wait_for_function("() => /could not be loaded|Using mnist:/.test(document.body.innerText)")
    if "Using mnist:" not in page.locator("body").inner_text():  # offline (tests, CI): the visible fallback
        page.get_by_text("could not be loaded or downloaded here, so this uses mnist-5k instead").wait_for()
    shot(page, "train-fallback")
    page.get_by_label("Data set").click()
    page.get_by_role("option", name="MNIST, 5,000 digits").click()
    page.get_by_text("Using mnist-5k").wait_for()


def test_a_tiny_training_run_plots_live_and_its_model_reaches_generate(page):
    page.get_by_role("tab", name="Train").click()
    set_budget(page, 120, 64)
    page.get_by_role("button", name="Start training").click()

    seen, deadline = {0}, time.monotonic() + TIMEOUT_MS / 1000
    while not status(page).startswith("Done"):
        assert time.monotonic() < deadline, status(page)
        seen.add(line_points(page))
        page.wait_for_timeout(300)
    seen.add(line_points(page))
    assert len(seen - {0}) >= 2, f"the plot never gained points: {sorted(seen)}"
    assert "my-v3-1 is ready" in status(page)
    shot(page, "train-done")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the trained model (.safetensors)").click()
    model = pixelar.load_checkpoint(download.value.path())
    assert model.name == "v3" and model.metadata["steps"] == 120 and model.metadata["dataset"] == "mnist-5k"

    page.get_by_role("tab", name="Generate").click()
    page.get_by_label("Model").first.click()
    page.get_by_role("option", name="my-v3-1 · trained here").click()
    old = image_src(page, "generate-grid")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_new_image(page, "generate-grid", old)
    assert "samples from my-v3-1" in page.locator("#generate-caption").inner_text()
    shot(page, "generate-trained")


def test_users_train_one_at_a_time_and_keep_their_models_to_themselves(browser, app_server):
    alice, bob = open_app(browser, app_server.url), open_app(browser, app_server.url)
    for user in (alice, bob):
        user.get_by_role("tab", name="Train").click()
    set_budget(alice, 100_000, 32)
    alice.get_by_role("button", name="Start training").click()
    alice.wait_for_function("() => document.querySelector('#train-status').innerText.includes('samples/s')")

    set_budget(bob, 40, 32)
    bob.get_by_role("button", name="Start training").click()
    bob.get_by_text("Waiting for another user's training to finish").wait_for()
    shot(bob, "train-waiting")

    bob.get_by_role("tab", name="Generate").click()  # generation keeps answering while Alice trains
    bob.get_by_role("button", name="Generate", exact=True).click()
    wait_for_new_image(bob, "generate-grid", None)
    assert status(alice).startswith("Training V3")

    alice.get_by_role("button", name="Stop").click()
    alice.wait_for_function("() => document.querySelector('#train-status').innerText.startsWith('Stopped after')")
    assert "my-v3-1 is ready" in status(alice)  # stopping keeps what was trained
    bob.get_by_role("tab", name="Train").click()
    bob.wait_for_function("() => document.querySelector('#train-status').innerText.startsWith('Done after 40 steps')")

    carol = open_app(browser, app_server.url)
    carol.get_by_label("Model").first.click()
    assert carol.get_by_role("option").count() == 3  # the shipped V1, V2, V3 only
    assert carol.get_by_role("option", name="trained here").count() == 0


@pytest.fixture
def fashion_checkpoint(tiny_checkpoints):
    """A tiny V3 trained on Fashion-MNIST, dropped into the running app's checkpoint folder (and removed after)."""
    try:
        dataset = pixelar.load_dataset("fashion")
    except pixelar.DataUnavailable as error:
        pytest.skip(f"no Fashion-MNIST here: {error}")
    model = pixelar.build_model("v3", hidden=32)
    pixelar.train(model, dataset, pixelar.TrainConfig(steps=10, batch_size=128, eval_every=0, eval_images=2))
    path = tiny_checkpoints / "v3-fashion.safetensors"
    pixelar.save_checkpoint(model, path, dataset="fashion", class_names=list(dataset.class_names))
    yield path
    path.unlink()


def test_a_fashion_model_speaks_in_class_names(browser, app_server, fashion_checkpoint):
    page = open_app(browser, app_server.url)
    page.get_by_label("Model").first.click()
    page.get_by_role("option", name="v3-fashion (V3) · pretrained").click()
    page.get_by_label("Trouser").first.check()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function("() => document.querySelector('#generate-caption').innerText.includes('“Trouser”')")

    page.get_by_role("tab", name="Explore").click()
    page.locator("#explore-model input").click()
    page.get_by_role("option", name="v3-fashion (V3) · pretrained").click()
    page.wait_for_function("() => document.querySelector('#explore-real-caption').innerText.includes('of fashion')")
    page.get_by_role("button", name="Complete", exact=True).click()
    page.wait_for_function(
        "names => names.some(n => document.querySelector('#complete-caption').innerText.includes(`as a ${n}`))",
        arg=list(pixelar.data.class_names("fashion")),
    )
    shot(page, "fashion")
