"""The Generate tab: a grid of samples from any model (optionally with their entropy maps), the models side by
side, and a temperature strip, each shown in the same place.

Also the ``generate`` API endpoint: ``client.predict(model, digit, temperature, n, seed, api_name="/generate")``
returns the grid picture; ``top_k`` and ``top_p`` are optional inputs after those.
"""
from __future__ import annotations

import gradio as gr
from PIL import Image

import pixelar
from pixelar.interface import PixelModel

from . import pictures
from .common import ALL_CLASSES, APP_MAX_SAMPLES, SAMPLING, BuiltTab, Settings, check_count, friendly, sampler_controls
from .links import TabLink, as_flag, as_number, sampler_updates, sampler_values
from .models import Shelf, Workspace, model_title
from .services import Services
from .text import as_markdown
from .tour import guided_tour

STRIP_TEMPERATURES = (0.7, 0.85, 1.0, 1.3)
COLD_LESSON = (
    "**Why a cold sampler never starts a stroke.** Every stroke begins on a blank background, where the model "
    "gives black almost all the probability and the first bright pixel is an *unlikely* pick. Cooling sharpens "
    "each distribution towards its likeliest bin, so that first unlikely pixel stops being drawn and the image "
    "stays blank; warmer than 1, the unlikely picks happen everywhere, and noise creeps in."
)
INTRO = (
    "Pick a model, a digit and a temperature, and draw a grid of samples, one pixel at a time, left to right, "
    "top to bottom. The seed makes a result repeatable: same seed, same dice."
)
# Present: the result column (caption and pictures) fills the screen, as the step player's Present does
PRESENT_JS = """() => {
  const column = document.querySelector('#generate-result'), on = !column.classList.contains('presenting');
  column.classList.toggle('presenting', on);
  document.querySelector('#generate-present').textContent = on ? 'Leave full screen (Esc)' : 'Present (full screen)';
  if (on && column.requestFullscreen) column.requestFullscreen().catch(() => {});
  if (!on && document.fullscreenElement) document.exitFullscreen().catch(() => {});
  if (on) document.addEventListener('fullscreenchange', function left() {
    if (document.fullscreenElement) return;
    document.removeEventListener('fullscreenchange', left);
    if (column.classList.contains('presenting')) document.querySelector('#generate-present').click();
  });
}"""
CLEARED = "Settings changed: press **Generate**, **Compare the models** or **Temperature strip**."


# ---- pure functions ----


def sample_grid(services: Services, settings: Settings, n: int) -> pixelar.Trace:
    return services.sample(settings.model, n=n, **settings.sample_kwargs())


def grid_picture(trace: pixelar.Trace, names: list[str] | None = None) -> Image.Image:
    """The samples as one grid, drawn large; ``names``: caption each with its class name."""
    return pictures.grid(trace, names)


def summary(settings: Settings, trace: pixelar.Trace, digit) -> str:
    """One line saying what was drawn, with everything needed to draw it again."""
    model = settings.model
    if not model.conditional:
        what = "no class (this model ignores it)"
    elif digit == ALL_CLASSES:
        what = "one of each in turn"
    else:
        what = f"“{as_markdown(settings.class_names[trace.labels[0]])}”"
    return (
        f"**{len(trace)} samples** from **{as_markdown(settings.shown())}**, "
        f"{model_title(model.name)}{_trained_on(model)}; "
        f"class: {what}; {settings.describe()}."
    )


def _trained_on(model: PixelModel) -> str:
    meta = model.metadata
    if "steps" not in meta:
        return ""
    return f", trained on {as_markdown(meta.get('dataset', '?'))} for {meta['steps']:,} steps"


def generate_endpoint(shelf: Shelf, controls, services: Services):
    """The ``generate`` API function (its parameter names are the API's)."""

    @friendly
    def generate(model: str, digit: int, temperature: float, n: int, seed: int | None,
                 top_k: int | None = None, top_p: float | None = None, workspace: Workspace | None = None):
        """Sample n images from a model and return them as one grid picture. digit -1: one of each class in turn;
        seed empty: a new random one. top_k (1-16) and top_p (0-1] are optional; empty means off."""
        settings = controls.read(workspace, model, digit, temperature, top_k, top_p, seed, seed is None or seed == "")
        return grid_picture(sample_grid(services, settings, check_count(n)))

    return generate


# ---- layout and wiring ----


def build_generate_tab(shelf: Shelf, session: gr.State, services: Services) -> BuiltTab:
    """The Generate tab, its events, and the ``generate`` API endpoint; samples go through the app's ``services``."""
    with gr.Tab("Generate", id="generate", elem_id="tab-generate") as tab:
        with gr.Row(elem_classes="tab-body"):
            with gr.Column(scale=1, min_width=440, elem_classes="controls"):  # wide: the grid is as tall as the screen
                def buttons():
                    nonlocal generate, compare, strip
                    generate = gr.Button("Generate", variant="primary", size="lg", elem_id="generate-button")
                    with gr.Row():
                        compare = gr.Button("Compare the models", size="sm", min_width=120)
                        strip = gr.Button("Temperature strip",
                                          size="sm", min_width=120, elem_id="strip-button")

                def how_many():
                    nonlocal count, show_entropy
                    count = gr.Number(16, label=f"Samples (1–{APP_MAX_SAMPLES})", min_width=100, elem_id="sample-count")
                    show_entropy = gr.Checkbox(False, label="Entropy maps too", min_width=110)

                generate = compare = strip = count = show_entropy = None
                controls = sampler_controls(shelf, session, after_class=buttons, beside_new_seed=how_many)
                gr.Markdown(INTRO, elem_classes="small-note")
                guided_tour("generate")
            with gr.Column(scale=3, min_width=320, elem_id="generate-result"):
                with gr.Row(elem_classes="result-top"):
                    caption = gr.Markdown(elem_id="generate-caption")
                    present = gr.Button("Present (full screen)", size="sm", scale=0, min_width=150,
                                        elem_id="generate-present")
                with gr.Row():
                    grid = gr.Image(
                        label="Samples", type="pil", format="png", interactive=False, elem_classes="pixelated result picture",
                        elem_id="generate-grid", buttons=["download", "fullscreen"], show_label=False,
                    )
                    entropy = gr.Image(
                        label="Entropy of each step (bright: the model was unsure)", type="pil", format="png",
                        visible=False, interactive=False, elem_classes="pixelated result picture", elem_id="generate-entropy",
                        buttons=["download", "fullscreen"],
                    )

        results = [grid, entropy, caption]

        @friendly
        def on_generate(workspace, n, with_entropy, *values):
            settings = controls.read(workspace, *values)
            trace = sample_grid(services, settings, check_count(n))
            digit = values[1]
            captioned = settings.model.conditional and digit == ALL_CLASSES
            return (
                grid_picture(trace, settings.class_names if captioned else None),
                gr.Image(pictures.entropy_sheet(trace) if with_entropy else None, visible=bool(with_entropy)),
                summary(settings, trace, digit),
                settings.seed,
            )

        generate.click(
            on_generate, inputs=[session, count, show_entropy, *controls.inputs], outputs=[*results, controls.seed],
            **SAMPLING, api_visibility="private", show_progress_on=[grid],
        )

        @friendly
        def on_compare(workspace, n, *values):
            kinds = shelf.by_kind()
            if not kinds:
                raise gr.Error(shelf.hint(), print_exception=False)
            settings = controls.read(workspace, *values)
            n = check_count(n)
            traces = {}
            for kind, name in kinds.items():
                model = shelf.get(name, workspace)
                label = settings.label if model.conditional else None
                kwargs = {**settings.sample_kwargs(), "labels": label}
                traces[kind] = services.sample(model, n=n, **kwargs)
            digit = values[1]
            shown = "one of each digit in turn" if digit == ALL_CLASSES or settings.label is None else f"digit {digit}"
            sees = " ".join(f"**{kind.upper()}**: {pixelar.MODELS[kind].description}." for kind in kinds)
            text = (f"**The models side by side**, same dice ({shown}; {settings.describe()}). "
                    f"Only models that take the class draw the digit asked for. {sees}")
            return pictures.compare_sheet(traces), gr.Image(None, visible=False), text, settings.seed

        compare.click(
            on_compare, inputs=[session, count, *controls.inputs], outputs=[*results, controls.seed],
            **SAMPLING, api_visibility="private", show_progress_on=[grid],
        )

        @friendly
        def on_strip(workspace, *values):
            settings = controls.read(workspace, *values)
            label = 0 if settings.label is None else settings.label
            kwargs = {**settings.sample_kwargs(), "labels": label}
            traces = services.sample_each(settings.model, [{**kwargs, "n": 1, "temperature": t} for t in STRIP_TEMPERATURES])
            class_name = settings.class_name(label)
            what = f"class “{as_markdown(class_name)}”" if class_name else "no class (this model ignores it)"
            text = (f"**{as_markdown(settings.shown())}**, {what}, seed **{settings.seed}** at four temperatures: "
                    f"every pixel rolls the same dice, only the temperature differs.\n\n{COLD_LESSON}")
            return pictures.temperature_row(traces), gr.Image(None, visible=False), text, settings.seed

        strip.click(
            on_strip, inputs=[session, *controls.inputs], outputs=[*results, controls.seed],
            **SAMPLING, api_visibility="private", show_progress_on=[grid],
        )

        present.click(None, js=PRESENT_JS)  # in the page: the result column fills the screen (Esc or the button leaves)

        # results that no longer match the inputs are cleared, in the page (no request)
        changed = [box.input for box in (*controls.inputs, count, show_entropy) if box is not controls.new_seed]
        gr.on(changed, fn=None, js=f"() => [null, null, {CLEARED!r}]", outputs=[grid, entropy, caption],
              api_visibility="private")

        def open_link(values: dict[str, str], workspace: Workspace | None) -> dict:
            inputs = sampler_values(controls, values)
            n, with_entropy = as_number(values.get("n", "16")), as_flag(values.get("entropy"), False)
            shown = dict(zip([*results, controls.seed], on_generate(workspace, n, with_entropy, *inputs)))
            return {**sampler_updates(controls, inputs), count: n, show_entropy: with_entropy, **shown}

        link_keys = {**controls.link_keys(), "n": count, "entropy": show_entropy}
        link = TabLink("generate", link_keys, open_link, [*controls.inputs, count, show_entropy, *results])

        # the API's digit is a number box of its own: a bad one gets the field's message, not a radio's traceback
        api_digit = gr.Number(value=ALL_CLASSES, visible=False)
        p = controls
        gr.on(
            triggers=[], fn=generate_endpoint(shelf, controls, services),
            inputs=[p.model, api_digit, p.temperature, count, p.seed, p.top_k, p.top_p, session],
            outputs=[grid], api_name="generate", **SAMPLING,
        )
    return BuiltTab(tab, [controls.model], link)
