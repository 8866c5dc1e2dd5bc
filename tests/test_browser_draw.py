"""The Draw tab in headless Chromium: strokes drawn with mouse events are read by every model, pictured as
the models see them, scored, read by Bayes' rule and finished; blank and bad uploads get a message."""
import numpy as np
import pytest
from PIL import Image

from test_browser import (  # noqa: F401  (the browser fixture)
    ARTIFACTS, PHONE, PROJECTOR, browser, close_messages, image_src, inside_viewport, open_app, shot, wait_for_new_image,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def open_draw_tab(browser, url, viewport):
    page = open_app(browser, url, viewport)
    page.get_by_role("tab", name="Draw").click()
    page.locator("#draw-canvas canvas").wait_for()
    return page


def draw_a_seven(page) -> None:
    """A bar and a diagonal, with mouse events on the canvas (a finger or pen sends the same pointer events)."""
    canvas = page.locator("#draw-canvas canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.3 * w, y + 0.2 * h)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x + (0.3 + 0.04 * i) * w, y + 0.2 * h)
    for i in range(1, 16):
        page.mouse.move(x + (0.7 - 0.018 * i) * w, y + (0.2 + 0.045 * i) * h)
    page.mouse.up()


def preview_pixels(page) -> np.ndarray:
    """The 'what the models see' picture, as the page shows it."""
    path = ARTIFACTS / "draw-preview.png"
    page.locator("#draw-preview img").screenshot(path=str(path))
    return np.asarray(Image.open(path).convert("L"))


@pytest.mark.parametrize("viewport", [PROJECTOR, PHONE], ids=["projector", "phone"])
def test_a_drawn_seven_is_seen_scored_read_and_finished(browser, app_server, viewport):
    page = open_draw_tab(browser, app_server.url, viewport)
    draw_a_seven(page)
    page.wait_for_selector("#draw-table table")
    assert image_src(page, "draw-preview")
    seen = preview_pixels(page)
    assert seen.max() > 200 and (seen > 128).mean() < 0.4  # light strokes on black, not a blank or a white page
    table = page.locator("#draw-table").inner_text()
    for model in ("V1", "V2", "V3", "V4"):
        assert model in table
    assert "bits per pixel" in table and "of real 7s" in table
    bars = page.locator("#draw-posterior").inner_text()
    assert "%" in bars
    assert image_src(page, "draw-surprise")
    old = image_src(page, "draw-completion")
    page.locator("#draw-finish-as input").click()
    page.get_by_role("option", name="9", exact=True).click()
    page.locator("#draw-finish").click()
    wait_for_new_image(page, "draw-completion", old)
    assert "as a 9" in page.locator("#draw-completion-caption").inner_text()
    name = "projector" if viewport == PROJECTOR else "phone"
    shot(page, f"draw-{name}", full_page=True)
    if viewport == PROJECTOR:
        assert inside_viewport(page, page.locator("#draw-canvas canvas"))
        assert inside_viewport(page, page.locator("#draw-table"))


def upload(page, path) -> None:
    page.locator("#draw-canvas input[type=file]").set_input_files(str(path))


def test_a_photo_of_dark_ink_on_paper_is_read_like_a_drawing(browser, app_server, tmp_path):
    page = open_draw_tab(browser, app_server.url, PROJECTOR)
    photo = tmp_path / "seven.jpg"
    picture = np.full((300, 200, 3), 235, np.uint8)  # a grey-white page, not square
    picture[40:60, 40:160] = 20  # the bar of a 7 ...
    picture[60:260, 120:140] = 20  # ... and its stem
    Image.fromarray(picture).save(photo, "JPEG")
    upload(page, photo)
    page.wait_for_selector("#draw-table table")
    seen = preview_pixels(page)
    assert seen.max() > 200 and (seen > 128).mean() < 0.4  # light ink on black, as MNIST and the canvas have it


def test_a_blank_picture_and_a_file_that_is_not_one_get_a_message(browser, app_server, tmp_path):
    page = open_draw_tab(browser, app_server.url, PROJECTOR)
    blank = tmp_path / "blank.png"
    Image.new("L", (100, 100), 255).save(blank)
    upload(page, blank)
    page.get_by_text("the drawing is blank").wait_for()
    close_messages(page)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a picture")
    upload(page, junk)
    page.get_by_text("not a picture this browser can read").wait_for()
    assert not page.locator("#draw-table table").count()  # nothing was read
    shot(page, "draw-bad-file")
