"""The Draw tab: a student draws (or uploads) a digit; every digit model scores it pixel by pixel, the
class-conditional ones read it by Bayes' rule, and one finishes it from its top rows, as any class."""
from __future__ import annotations

import base64
import weakref
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import numpy as np

from pixelar import experiments, reading, render
from pixelar.data import DIGITS
from pixelar.interface import PixelModel
from pixelar.models import IMAGE_SIZE

from . import pictures, serving
from .common import SAMPLING, BuiltTab, check_whole, fresh_seed, friendly, model_picker
from .data import DataSets
from .links import picker_link
from .explore_tab import models_of_the_same_kind
from .models import Shelf
from .services import Services
from .text import as_markdown

REAL_DIGITS = "mnist-5k"  # the held-out digits a drawing is compared with
INTRO = ("Draw a digit with the mouse, a pen or a finger (or upload a photo). The models see it the way MNIST digits "
         "are made: fitted into 20×20, centred, 16 grey levels. A model that **draws** digits can also **read** them: "
         "p(class | image) ∝ p(image | class), each class's probability of every pixel multiplied together.")
DRAWING_SIZE = 280  # the canvas's own pixels: ten per model pixel
PNG_DATA_URL = "data:image/png;base64,"
MAX_DATA_URL = 2_000_000  # a 280x280 PNG is ~10-40 kB; anything far larger did not come from the canvas
CANVAS = f"""<div class="draw-box"><canvas width="{DRAWING_SIZE}" height="{DRAWING_SIZE}" aria-label="drawing canvas"></canvas>
<button class="draw-clear" type="button">Clear</button></div>
<label class="draw-upload">Upload a photo <input type="file" accept="image/*"></label>
<p class="draw-message" role="status"></p>"""
CANVAS_CSS = """.draw-box { position: relative; width: 100%; max-width: 320px; margin: 0 auto; }
.draw-box canvas { width: 100%; aspect-ratio: 1; touch-action: none; cursor: crosshair; border-radius: 6px;
  background: #000; display: block; }
.draw-clear { position: absolute; top: 6px; right: 6px; font-size: 15px; padding: 2px 10px; border-radius: 4px;
  background: #333; color: #eee; border: 1px solid #777; cursor: pointer; }
.draw-upload { display: block; max-width: 320px; margin: 8px auto 0; font-size: 15px; cursor: pointer; }
.draw-upload input { font-size: 14px; max-width: 100%; }
.draw-message { max-width: 320px; margin: 4px auto 0; font-size: 15px; color: var(--color-accent); min-height: 1em; }"""
CANVAS_JS = """
const canvas = element.querySelector('canvas'), ctx = canvas.getContext('2d');
const message = element.querySelector('.draw-message'), file = element.querySelector('input[type=file]');
const clear = () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height); message.textContent = ''; };
clear();
let last = null;
const send = () => trigger('submit', {picture: canvas.toDataURL('image/png')});
const at = e => { const r = canvas.getBoundingClientRect();
  return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
const stroke = (a, b) => { ctx.strokeStyle = '#fff'; ctx.lineWidth = 22; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke(); };
canvas.addEventListener('pointerdown', e => { e.preventDefault(); canvas.setPointerCapture(e.pointerId);
  message.textContent = ''; last = at(e); stroke(last, last); });
canvas.addEventListener('pointermove', e => { if (!last) return; const p = at(e); stroke(last, p); last = p; });
const end = () => { if (!last) return; last = null; send(); };
canvas.addEventListener('pointerup', end);
canvas.addEventListener('pointercancel', end);
element.querySelector('.draw-clear').addEventListener('click', () => { clear(); trigger('click'); });
file.addEventListener('change', () => {  // a photo is drawn onto the canvas (fitted, on black) and sent like a drawing
  const chosen = file.files[0]; file.value = '';
  if (!chosen) return;
  if (chosen.size > MAX_BYTES) { message.textContent = `That file is over ${MAX_BYTES / 2 ** 20} MB: choose a smaller picture.`; return; }
  const picture = new Image(), url = URL.createObjectURL(chosen);
  picture.onload = () => {
    URL.revokeObjectURL(url); clear();
    const scale = Math.min(canvas.width / picture.naturalWidth, canvas.height / picture.naturalHeight);
    const w = picture.naturalWidth * scale, h = picture.naturalHeight * scale;
    const x = Math.floor((canvas.width - w) / 2), y = Math.floor((canvas.height - h) / 2);
    ctx.drawImage(picture, x, y, w, h);
    const box = ctx.getImageData(x, y, Math.max(1, Math.floor(w)), Math.max(1, Math.floor(h))), px = box.data;
    const grey = i => (px[i] + px[i + 1] + px[i + 2]) / 3, bw = box.width, bh = box.height;
    let edge = 0, n = 0;  // dark ink on light paper becomes light ink on black, as on the canvas
    for (let i = 0; i < bw; i++) { edge += grey(4 * i) + grey(4 * ((bh - 1) * bw + i)); n += 2; }
    for (let j = 0; j < bh; j++) { edge += grey(4 * j * bw) + grey(4 * (j * bw + bw - 1)); n += 2; }
    if (edge / n > 128) { for (let i = 0; i < px.length; i += 4) { px[i] = 255 - px[i]; px[i + 1] = 255 - px[i + 1]; px[i + 2] = 255 - px[i + 2]; } }
    ctx.putImageData(box, x, y);
    send();
  };
  picture.onerror = () => { URL.revokeObjectURL(url); message.textContent = 'That file is not a picture this browser can read (PNG, JPEG, WebP, GIF, BMP).'; };
  picture.src = url;
});
""".replace("MAX_BYTES", str(reading.MAX_PICTURE_BYTES))


# ---- pure functions ----


def drawn_digit(event_data: dict | None) -> np.ndarray:
    """The canvas's picture (a PNG data URL sent by the page) as an MNIST digit: 784 uint8 grey levels."""
    picture = event_data.get("picture") if isinstance(event_data, dict) else None
    if not isinstance(picture, str) or not picture.startswith(PNG_DATA_URL) or len(picture) > MAX_DATA_URL:
        raise ValueError("the drawing did not arrive as a picture: clear the canvas and draw again")
    try:
        png = base64.b64decode(picture[len(PNG_DATA_URL):], validate=True)
    except ValueError:
        raise ValueError("the drawing did not arrive as a picture: clear the canvas and draw again") from None
    return reading.prepare_drawing(reading.read_picture(png))


def checked_digit(grey) -> np.ndarray:
    """The digit kept in the session (784 grey levels), or a message to draw one first."""
    if grey is None:
        raise ValueError("draw a digit first (or upload a picture of one)")
    return np.asarray(grey, dtype=np.uint8)


def preview(grey: np.ndarray):
    return render.grey_image(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, 8)


class RealDigits:
    """Each model's bits per pixel on the held-out digits of each class, computed once per model and class."""

    def __init__(self, data_sets: DataSets):
        self.data_sets = data_sets
        self._bits: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {class: (n,) bits/px}

    def bits(self, model: PixelModel, label: int) -> np.ndarray:
        per_class = self._bits.setdefault(model, {})
        if label not in per_class:
            split = self.data_sets.load(REAL_DIGITS)[0].held_out
            images = split.images[split.labels == label]
            per_class[label] = reading.bits_per_pixel(model, images.numpy(), label)
        return per_class[label]

    def share_less_surprising(self, model: PixelModel, label: int, bits_per_pixel: float) -> float:
        """The share of real digits of class ``label`` that ``model`` finds less surprising than ``bits_per_pixel``."""
        return float(np.mean(self.bits(model, label) < bits_per_pixel))


def verdicts(models: dict[str, PixelModel], grey: np.ndarray, label: int, real: RealDigits) -> dict:
    """Each model's reading of one digit and its share of less surprising real digits, by model name; the models
    are read side by side, one per free core (each reading is one thread of large matmuls)."""
    def one(model):
        verdict = reading.read(model, grey, label)
        return verdict, real.share_less_surprising(model, label, verdict.surprise.bits_per_pixel)

    with ThreadPoolExecutor(serving.workers()) as pool:
        return dict(zip(models, pool.map(one, models.values())))


def read_all(models: dict[str, PixelModel], grey: np.ndarray, label: int, real: RealDigits) -> tuple:
    """Every model's verdict on one drawn digit, as (surprise sheet, table, {model: posterior by class name})."""
    rows, posteriors = [], {}
    found = verdicts(models, grey, label, real)
    for name, (seen, share) in found.items():
        reads = "—"
        if seen.posterior is not None:
            names = Shelf.class_names(models[name])
            posteriors[name] = dict(zip(names, seen.posterior))
            best = int(np.argmax(seen.posterior))
            reads = f"**{as_markdown(names[best])}** ({seen.posterior[best]:.0%})"
        rows.append(f"| {as_markdown(name)} | {seen.surprise.bits_per_pixel:.2f} (K {models[name].k}) "
                    f"| more surprising than {share:.0%} of real {label}s | {reads} |")
    table = ("| model | bits per pixel | against the 50 held-out real ones | reads it as |\n|---|---|---|---|\n"
             + "\n".join(rows))
    sheet = pictures.surprise_sheet(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255,
                                    {name: seen.surprise for name, (seen, _) in found.items()}, first_caption="your digit")
    return sheet, table, posteriors


def finish(services: Services, model: PixelModel, name: str, grey: np.ndarray, keep_rows: int, label: int) -> tuple:
    """Four completions of the drawing from its first ``keep_rows`` rows, as class ``label``: (sheet, caption)."""
    trace = services.sample(model, n=4, labels=label, temperature=1.0, seed=fresh_seed(),
                           prefix=experiments.completion_prefix(grey, model.k, keep_rows))
    as_what = f" as a {label}" if model.conditional else ""
    sheet = pictures.completion_sheet(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, trace, keep_rows,
                                      ["your digit"] + [f"#{i + 1}{as_what}" for i in range(4)])
    return sheet, (f"Your first **{keep_rows} rows** (above the red line), finished by **{as_markdown(name)}**{as_what}, "
                   f"4 times (seed {trace.seed}).")


# ---- layout and wiring ----


def build_draw_tab(shelf: Shelf, data_sets: DataSets, session: gr.State, services: Services) -> BuiltTab:
    """The Draw tab and its events: each finished stroke (or an upload) is read at once."""
    real = RealDigits(data_sets)
    digits = [(str(d), d) for d in range(10)]
    with gr.Tab("Draw", id="draw", elem_id="tab-draw") as tab:
        digit = gr.State(None)  # the drawing as the models see it: 784 grey levels
        with gr.Row(elem_classes="tab-body"):
            with gr.Column(scale=1, min_width=280, elem_classes="controls"):
                canvas = gr.HTML(value=None, html_template=CANVAS, css_template=CANVAS_CSS, js_on_load=CANVAS_JS,
                                 elem_id="draw-canvas", apply_default_css=False, padding=False)
                drew = gr.Dropdown(digits, value=7, label="You drew a", elem_id="draw-class")
                gr.Markdown(INTRO, elem_classes="small-note")
            with gr.Column(scale=1, min_width=260):
                seen = gr.Image(label="What the models see (28×28)", type="pil", format="png", interactive=False,
                                elem_classes="pixelated", height=200, elem_id="draw-preview", buttons=[])
                model = model_picker(shelf, "draw-model")
                posterior = gr.Label(num_top_classes=4, label="p(class | your digit)", elem_id="draw-posterior")
            with gr.Column(scale=2, min_width=320):
                table = gr.Markdown(elem_id="draw-table")
                surprise = gr.Image(label="Surprise of each pixel", type="pil", format="png", interactive=False,
                                    show_label=False, elem_classes="pixelated result", elem_id="draw-surprise")
                with gr.Row(equal_height=True):
                    keep_rows = gr.Number(14, label=f"Rows to keep (0 to {IMAGE_SIZE})", min_width=100,
                                          elem_id="draw-keep-rows")
                    finish_as = gr.Dropdown(digits, value=7, label="Finish it as a", min_width=100, elem_id="draw-finish-as")
                    finish_button = gr.Button("Finish it", size="md", elem_id="draw-finish")
                completion_caption = gr.Markdown(elem_id="draw-completion-caption")
                completion = gr.Image(label="Completions", type="pil", format="png", interactive=False, show_label=False,
                                      elem_classes="pixelated result", elem_id="draw-completion")

        def read(grey: np.ndarray, name, label, workspace) -> tuple:
            label = check_whole(label, "You drew a", 0, 9)
            chosen = shelf.get(name, workspace)
            if Shelf.class_names(chosen) != list(DIGITS):
                raise ValueError("This tab reads digits: pick a model trained on digits (V1-V4 or one you trained on MNIST)")
            sheet, text, posteriors = read_all(models_of_the_same_kind(shelf, workspace, chosen), grey, label, real)
            shown = posteriors.get(name.upper() if name == chosen.name else name)
            bars = shown if shown is not None else gr.Label(value=None, label=f"{name} does not read: it ignores the class")
            return grey.tolist(), preview(grey), sheet, text, bars

        @friendly
        def on_stroke(name, label, workspace, event: gr.EventData):
            return read(drawn_digit(getattr(event, "_data", None)), name, label, workspace)

        @friendly
        def on_again(grey, name, label, workspace):
            return read(checked_digit(grey), name, label, workspace) if grey is not None else [gr.skip()] * 5

        @friendly
        def on_finish(grey, name, keep, label, workspace):
            return finish(services, shelf.get(name, workspace), name, checked_digit(grey),
                          check_whole(keep, "Rows to keep", 0, IMAGE_SIZE), check_whole(label, "Finish it as a", 0, 9))

        private = {"api_visibility": "private"}
        shown = [digit, seen, surprise, table, posterior]
        canvas.submit(on_stroke, [model, drew, session], shown, trigger_mode="always_last", **SAMPLING,
                      show_progress_on=[seen], **private)
        gr.on([model.change, drew.change], on_again, [digit, model, drew, session], shown, trigger_mode="always_last",
              **SAMPLING, show_progress_on=[seen], **private)
        canvas.click(lambda: (None, None, None, "", None, None, ""), outputs=[*shown, completion, completion_caption],
                     queue=False, **private)
        finish_button.click(on_finish, [digit, model, keep_rows, finish_as, session], [completion, completion_caption],
                            **SAMPLING, show_progress_on=[completion], **private)
    return BuiltTab(tab, [model], picker_link("draw", model, shelf))
