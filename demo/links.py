"""Links to the moment on screen: the page keeps the open tab's settings in its URL (``?tab=step&model=…&seed=…
&step=600``), and a URL opens the app in that state, with the same picture.

The browser writes the URL (``LINK_JS``; each linked control reports its value as it changes, the step player its
step, what-if and "where it looked"); the server reads it once, when the page loads (``open_link``). A link is
outside input: each tab turns its values into settings through its own checks, so a bad value or a model this
server does not have gives a message naming it, and the app opens with its defaults. "Share" shows the link as
text and as a QR code for the projector.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import gradio as gr
import segno

from .common import ERROR_SECONDS, SAMPLING, BuiltTab, SamplerControls, friendly, user_message
from .lesson import lesson_html, step_number
from .models import Shelf, Workspace

MAX_LINK_CHARS = 2000  # a longer URL is refused whole
MAX_VALUE_CHARS = 200  # a model's name is at most this long

# The page's half: the open tab's values, one dict per tab, written into the URL with replaceState (no reload, no
# history entry per change). Until the server has opened the page's own link, values are only recorded.
LINK_JS = """
() => {
  const values = {};
  let names = [], tab = 'generate', lesson = null, ready = false;
  const write = () => {
    if (!ready) return;
    const query = new URLSearchParams({tab, ...(values[tab] || {}), ...(lesson ? {lesson} : {})});
    history.replaceState(history.state, '', `${location.pathname}?${query}`);
  };
  // The tab on screen, read from the page: Gradio's select events run one after another behind the tab's server
  // calls, so a busy server would leave the URL naming the tab before.
  const follow = () => {
    const shown = names.find(name => document.getElementById(`tab-${name}`)?.checkVisibility());
    if (shown && shown !== tab) { tab = shown; write(); }
  };
  new MutationObserver(() => requestAnimationFrame(follow))
    .observe(document.body, {attributes: true, attributeFilter: ['aria-selected'], subtree: true});
  window.pixelarLink = {
    set(name, key, value) {
      const own = values[name] = values[name] || {};
      if (value === null || value === undefined || value === '' || value === false) delete own[key];
      else own[key] = value === true ? '1' : String(value);
      if (name === tab) write();
    },
    ready(opened, step, layout, now) {  // the tab and lesson step the link opened; every linked control's value
      layout.forEach(([name, key], i) => window.pixelarLink.set(name, key, now[i]));
      names = [...new Set(layout.map(([name]) => name))];
      if (opened) tab = opened;  // else the tab on screen (a student may have opened one meanwhile)
      lesson = step; ready = true; write();
      if (!opened) follow();
    },
  };
}
"""


@dataclass
class TabLink:
    """What one tab keeps in the URL. ``name``: the tab's id (its panel's elem_id is ``tab-<name>``, which the page
    watches). ``keys``: query key -> the control whose value it carries (the page writes it as the control changes).
    ``open(values, workspace)``: the tab's components' updates for a link's values (raw strings of known keys); it
    raises ValueError naming a bad value. ``outputs``: every component ``open`` updates."""

    name: str
    keys: dict[str, gr.components.Component]
    open: Callable[[dict[str, str], Workspace | None], dict]
    outputs: list = field(default_factory=list)
    extra_keys: tuple[str, ...] = ()  # written by the page itself (the step player's step, what-if, where it looked)


# ---- pure functions ----


def link_values(query: Mapping[str, str], link: TabLink) -> dict[str, str]:
    """The query's values for the tab's keys, each at most ``MAX_VALUE_CHARS`` (else a ValueError naming it)."""
    values = {}
    for key in (*link.keys, *link.extra_keys):
        if key in query:
            value = str(query[key])
            if len(value) > MAX_VALUE_CHARS:
                raise ValueError(f"The link's {key!r} is longer than {MAX_VALUE_CHARS} characters")
            values[key] = value
    return values


def as_number(value: str | None):
    """A link's number as the number box would hold it (an int or float); text that is not one stays text, so the
    box's own check names it."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def as_flag(value: str | None, default: bool) -> bool:
    """A link's tick box: "1" or "true" ticked, "0" or "false" not, absent: ``default``."""
    if value is None:
        return default
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise ValueError(f"A tick box in the link must be 1 or 0, got {value[:20]!r}")


def sampler_values(controls: SamplerControls, values: dict[str, str]) -> list:
    """The sampler controls' values (``controls.inputs`` order) for a link's raw values; absent ones are the boxes'
    defaults. A link with a seed repeats it ("New seed each time" unticked). ``controls.read`` checks them."""
    defaults = {"model": controls.model.value, "digit": controls.digit.value, "t": 1.0, "k": 0, "p": 1, "seed": None}
    given = {key: values[key] if key == "model" else as_number(values[key]) for key in controls.link_keys() if key in values}
    merged = {**defaults, **given}
    return [merged[key] for key in controls.link_keys()] + ["seed" not in values]


def sampler_updates(controls: SamplerControls, inputs: list) -> dict:
    """The controls' updates that show ``inputs`` (``controls.inputs`` order, as checked by ``controls.read``)."""
    return dict(zip(controls.inputs, inputs))


def picker_link(name: str, picker: gr.Dropdown, shelf: Shelf) -> TabLink:
    """The link of a tab whose state is its model picker (Explore, Draw): the model, checked by the shelf."""

    def open_model(values: dict[str, str], workspace: Workspace | None) -> dict:
        if "model" not in values:
            return {}
        shelf.get(values["model"], workspace)  # an unknown model is named
        return {picker: values["model"]}

    return TabLink(name, {"model": picker}, open_model, [picker])


def share_link(page_url) -> str:
    """The page's URL as it may be shown and encoded: http(s), at most ``MAX_LINK_CHARS``, its query re-encoded."""
    if not isinstance(page_url, str) or not 0 < len(page_url) <= MAX_LINK_CHARS:
        raise ValueError(f"The page's address must be text of at most {MAX_LINK_CHARS} characters")
    parts = urlsplit(page_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("The page's address must start with http:// or https://")
    query = urlencode(parse_qsl(parts.query)[:40])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def share_html(link: str) -> str:
    """The link as a large QR code (SVG) with the link under it, as text."""
    svg = segno.make(link, error="m").svg_inline(scale=6, border=2, dark="#000", light="#fff")
    return (f'<div class="share-qr">{svg}</div><p class="share-url"><code>{html.escape(link)}</code></p>')


# ---- layout and wiring ----


def share_button() -> gr.Button:
    return gr.Button("Share this view", size="sm", elem_id="share-button", min_width=120, scale=0)


def share_panel() -> tuple[gr.Column, gr.HTML]:
    """The panel "Share this view" opens (closed until then): the link as a QR code and as text, Copy and Close."""
    with gr.Column(visible=False, elem_id="share-panel") as panel:
        qr = gr.HTML(elem_id="share-qr")
        with gr.Row():
            copy = gr.Button("Copy link", size="sm", elem_id="share-copy")
            close = gr.Button("Close", size="sm", elem_id="share-close")
    copy.click(None, js="() => { const url = document.querySelector('#share-qr code')?.textContent || location.href;"
                        " navigator.clipboard?.writeText(url).catch(() => {}); }")
    close.click(lambda: gr.Column(visible=False), outputs=panel, api_visibility="private", queue=False)
    return panel, qr


def wire_links(tabs: gr.Tabs, built: list[BuiltTab], session: gr.State, after, share, lesson: gr.HTML) -> None:
    """Open the page's link once ``after`` (the load event that fills the pickers) is done, then let the page keep
    the URL; each linked control, and each tab as it opens, writes its part. ``share``: the button and
    ``share_panel()``'s parts; ``lesson``: the lesson bar, shown when the link is a step of the lesson."""
    links = {tab.link.name: tab.link for tab in built if tab.link is not None}
    outputs = list({id(c): c for link in links.values() for c in link.outputs}.values())
    # model pickers last: the page sets outputs in order, and a picker's change refits its tab's class picker from the
    # class already set (set after, the link's class would be refitted away)
    outputs.sort(key=lambda box: isinstance(box, gr.Dropdown))
    opened_tab = gr.Textbox(visible=False)  # the tab the link opened, for the page's half
    opened_lesson = gr.Number(None, visible=False)  # and the lesson's step, if the link is one

    def open_link(workspace: Workspace | None, request: gr.Request):
        query = dict(request.query_params) if request is not None else {}
        name = query.get("tab")
        if name is None:
            return {opened_tab: ""}
        try:
            if name not in links:
                raise ValueError(f"the link names no tab of this app ({name[:20]!r})")
            link = links[name]
            opened = {tabs: gr.Tabs(selected=name), opened_tab: name, **link.open(link_values(query, link), workspace)}
            if "lesson" in query:
                number = step_number(as_number(query["lesson"]))
                opened.update({lesson: gr.HTML(lesson_html(number), visible=True), opened_lesson: number})
            return opened
        except Exception as error:  # the app opens as usual, saying what was wrong with the link (a bug: logged)
            gr.Warning(f"This link could not be opened: {user_message(error).message}", duration=ERROR_SECONDS)
            return {opened_tab: ""}

    opened = after.then(open_link, inputs=[session], outputs=[tabs, opened_tab, opened_lesson, lesson, *outputs], **SAMPLING,
                        api_visibility="private", show_progress="hidden")
    layout = [(link.name, key) for link in links.values() for key in link.keys]
    boxes = [box for link in links.values() for box in link.keys.values()]
    opened.then(None, inputs=[opened_tab, opened_lesson, *boxes], js="(name, lesson, ...v) => { window.pixelarLink && "
                f"window.pixelarLink.ready(name, lesson, {json.dumps(layout)}, v); }}")
    for link in links.values():
        for key, box in link.keys.items():
            box.change(None, inputs=[box], js=f"(v) => {{ window.pixelarLink && window.pixelarLink.set('{link.name}', '{key}', v); }}")

    button, panel, qr = share

    @friendly
    def on_share(page_url):
        return gr.Column(visible=True), share_html(share_link(page_url))

    page_url = gr.Textbox(visible=False)
    button.click(on_share, inputs=[page_url], outputs=[panel, qr], js="() => location.href",
                 api_visibility="private", queue=False)
