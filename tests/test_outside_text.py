"""Outside text stays text: names from files and clients are cleaned of invalid Unicode when read, and escaped
wherever the app builds Markdown or HTML. Hostile names are listed and drawn by Hypothesis (lone surrogates
included); the browser half of this contract is in test_browser_names.py."""
import html
import logging
import os
import re
import shutil
import unicodedata

from hypothesis import HealthCheck, given, settings, strategies as st
from markdown_it import MarkdownIt

import pixelar
from demo.generate_tab import summary
from demo.models import Shelf
from demo.common import Settings
from demo.step_tab import describe
from demo.text import as_html, as_markdown, file_name_part
from pixelar.inputs import clean_text
from helpers import tiny

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "[Click](https://example.com/phish) <img src=https://example.com/x.png>",
    "![pic](https://example.com/x.png)",
    "javascript:alert(1)",
    "<a href='javascript:alert(1)'>x</a>",
    "https://example.com/phish www.example.com a@example.com",
    "**bold** _it_ `code` # heading | a | b |",
    "\u202eevil.exe\u202c",
    "tab\there\nnew line\x00\x1b[31m",
    "\udc00",
    "bad\udcff.safetensors",
    "&lt;img src=x&gt; &#60;b&#62;",
    "\\<img src=x onerror=alert(1)>",
]
ANY_TEXT = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(exclude_categories=()), max_size=40),  # every code point, lone surrogates too
    st.lists(st.sampled_from(HOSTILE + ["<", ">", "[", "](", ")", "&", ";", "\udc80", "\u202e", " "]), max_size=8).map("".join),
)
BAD_CATEGORIES = ("Cs", "Cc", "Cf")


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").render(markdown)


@given(ANY_TEXT)
def test_clean_text_replaces_invalid_and_invisible_characters_only(text):
    cleaned = clean_text(text)
    cleaned.encode("utf-8")  # valid Unicode: it can be sent to a page
    assert len(cleaned) == len(text)
    for before, after in zip(text, cleaned):
        assert after == (before if unicodedata.category(before) not in BAD_CATEGORIES else "\ufffd")


@given(ANY_TEXT)
def test_markdown_of_outside_text_is_that_text_and_nothing_else(text):
    markdown = as_markdown(text)
    page = rendered(f"name: {markdown}.")  # as the app shows names: inside a sentence
    assert re.fullmatch(r"<p>[^<>]*</p>\n", page), page  # one paragraph: no link, image, emphasis, tag
    assert html.unescape(page.removeprefix("<p>").removesuffix("</p>\n")) == f"name: {clean_text(text)}."
    assert "://" not in markdown and "www." not in markdown.lower() and "@" not in markdown  # no bare-URL links


@given(ANY_TEXT)
def test_html_of_outside_text_is_that_text(text):
    shown = as_html(text)
    assert "<" not in shown and ">" not in shown
    assert html.unescape(shown) == clean_text(text)


@given(ANY_TEXT)
def test_a_download_name_keeps_safe_characters_only(text):
    assert re.fullmatch(r"[A-Za-z0-9._-]*", file_name_part(text))


def v3_with(path, **metadata):
    return pixelar.save_checkpoint(tiny("v3", hidden=8, k=4), path, steps=3, **metadata)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dataset=ANY_TEXT, names=st.lists(ANY_TEXT.map(lambda s: s[:100]), min_size=10, max_size=10))
def test_names_in_a_checkpoint_load_cleaned(tmp_path, dataset, names):
    path = v3_with(tmp_path / "named.safetensors", dataset=dataset, class_names=names)
    for meta in (pixelar.read_metadata(path), pixelar.load_checkpoint(path).metadata):
        assert meta["dataset"] == clean_text(dataset)
        assert meta["class_names"] == [clean_text(n) for n in names]
        for text in [meta["dataset"], *meta["class_names"]]:
            text.encode("utf-8")


def test_a_name_that_is_not_valid_unicode_is_replaced_not_fatal(tmp_path):
    path = v3_with(tmp_path / "v3.safetensors", dataset="\udc00", class_names=["\udc00"] + list("123456789"))
    model = pixelar.load_checkpoint(path)
    assert model.metadata["dataset"] == "\ufffd" and model.metadata["class_names"][0] == "\ufffd"


CRAFTED = "<img src=x onerror=alert(1)>"
CRAFTED_DATASET = "[Click](https://example.com/phish) <img src=x onerror=alert(2)>"
CRAFTED_CLASSES = [CRAFTED, "[Click](https://example.com/phish)", "javascript:alert(3)", "\u202eevil", "\udc00",
                   "![pic](https://example.com/x.png)", "$$x^2 \\href{javascript:alert(5)}{y}$$", *"789"]
SKIPPED = ["<b onmouseover=alert(4)>broken", "bad\ufffd", "dangling", "loop"]  # as the notice shows them


def fill_crafted_folder(folder) -> None:
    """What a student might put in the checkpoints folder: a good V3 under an HTML file name with hostile names
    inside, a broken file under an HTML name, a file whose name is not UTF-8, a dangling link and a link loop."""
    v3_with(folder / f"{CRAFTED}.safetensors", dataset=CRAFTED_DATASET, class_names=CRAFTED_CLASSES)
    (folder / "<b onmouseover=alert(4)>broken.safetensors").write_bytes(b"not a checkpoint")
    shutil.copy(folder / f"{CRAFTED}.safetensors", os.path.join(os.fsencode(folder), b"bad\xff.safetensors"))
    (folder / "dangling.safetensors").symlink_to(folder / "gone.safetensors")
    (folder / "loop.safetensors").symlink_to(folder / "loop.safetensors")


def test_crafted_names_load_and_come_out_as_text(tmp_path, caplog):
    fill_crafted_folder(tmp_path)
    caplog.set_level(logging.WARNING)
    shelf = Shelf(tmp_path)
    assert [name for _, name in shelf.choices(None)] == [CRAFTED]
    notice = shelf.notice()
    notice.encode("utf-8")  # the page can be sent it
    assert rendered(notice).count("<") == 2  # <p> and </p>: no tag from a file name
    shown = html.unescape(rendered(notice))
    for name in SKIPPED:
        assert f"{name}.safetensors" in shown
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "dangling.safetensors cannot be read" in logged and "loop.safetensors cannot be read" in logged
    assert "not valid UTF-8" in logged
    shelf.notice()
    assert len([r for r in caplog.records if "skipping" in r.getMessage()]) == 4  # once each, not at every look

    model = shelf.get(CRAFTED, None)
    names = shelf.class_names(model)
    for label in (0, 1, 3, 4, 5):
        chosen = Settings(CRAFTED, model, names, label, 1.0, None, None, 7)
        trace = pixelar.sample(model, n=1, labels=label, seed=7)
        text = summary(chosen, trace, label)
        page = rendered(text)
        assert not re.search(r"<(?!/?(p|strong)>)", page), page  # only the summary's own bold
        shown = html.unescape(re.sub(r"</?(p|strong)>", "", page))
        assert CRAFTED in shown and clean_text(CRAFTED_CLASSES[label]) in shown
        assert CRAFTED_DATASET in shown  # the data set, as text
        caption = describe(chosen, trace)  # the player shows it with textContent
        assert caption.startswith(f"{CRAFTED} · class “{clean_text(CRAFTED_CLASSES[label])}”")
