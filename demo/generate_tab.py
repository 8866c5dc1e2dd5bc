"""The Generate tab: a grid of samples from any model, optionally their entropy maps, and V1 · V2 · V3 side by side.

Also the ``generate`` API endpoint: ``client.predict(model, digit, temperature, n, seed, api_name="/generate")``
returns the grid picture.
"""
from __future__ import annotations

import math

import gradio as gr
from PIL import Image

import pixelar
from pixelar import experiments, render, stepview
from pixelar.models import PixelMLP

from .common import (
    ALL_CLASSES,
    MAX_SAMPLES,
    BuiltTab,
    check_class,
    check_count,
    check_seed,
    check_temperature,
    class_picker,
    class_picker_for,
    friendly,
    model_picker,
    next_seed,
    seed_controls,
    temperature_slider,
)
from .models import Shelf, Workspace, model_title
from .tour import guided_tour

STRIP_TEMPERATURES = (0.3, 0.6, 1.0, 1.5)
GRID_WIDTH = 672  # screen pixels a grid is drawn at (then shown with nearest-neighbour scaling)


def _scale(columns: int, width: int = GRID_WIDTH) -> int:
    """Screen pixels per image pixel for a grid ``columns`` images wide."""
    return max(2, min(12, width // (columns * 28)))


def sample_model(
    shelf: Shelf, workspace: Workspace | None, name: str, digit, temperature, n, seed
) -> tuple[pixelar.Trace, PixelMLP]:
    """Check every input, then sample ``n`` images from the model called ``name``: its trace, and the model."""
    temperature, n, seed = check_temperature(temperature), check_count(n), check_seed(seed)
    model = shelf.get(name, workspace)
    labels = check_class(model, digit, shelf.class_names(model))
    return pixelar.sample(model, n, labels=labels, temperature=temperature, seed=seed), model


def grid_picture(trace: pixelar.Trace, names: list[str] | None = None) -> Image.Image:
    """The samples as one grid, drawn large; ``names``: caption each with its class name."""
    columns = math.ceil(math.sqrt(len(trace)))
    captions = [names[label] for label in trace.labels] if names else None
    return render.sample_grid(trace.images(), columns, _scale(columns), captions)


def entropy_picture(trace: pixelar.Trace) -> Image.Image:
    """Each sample's entropy map, in the same grid layout as the samples."""
    columns = math.ceil(math.sqrt(len(trace)))
    return stepview.entropy_sheet(trace, columns, _scale(columns))


def summary(name: str, model: PixelMLP, trace: pixelar.Trace, digit) -> str:
    """One line saying what was drawn, with everything needed to draw it again."""
    if not model.conditional:
        what = "no class (this model ignores it)"
    elif digit == ALL_CLASSES:
        what = "one of each in turn"
    else:
        what = f"“{Shelf.class_names(model)[trace.labels[0]]}”"
    return (
        f"**{len(trace)} samples** from **{name}**, {model_title(model.name)}{_trained_on(model)}; class: {what}; "
        f"temperature **{trace.temperature:g}**; seed **{trace.seed}**."
    )


def generate_endpoint(shelf: Shelf):
    """The ``generate`` API function (its parameter names are the API's)."""

    @friendly
    def generate(model: str, digit: int, temperature: float, n: int, seed: int | None, workspace: Workspace | None):
        """Sample n images from a model and return them as one grid picture. digit -1: one of each class in turn."""
        trace, _ = sample_model(shelf, workspace, model, digit, temperature, n, seed)
        return grid_picture(trace)

    return generate


def _trained_on(model: PixelMLP) -> str:
    meta = model.metadata
    if "steps" not in meta:
        return ""
    return f", trained on {meta.get('dataset', '?')} for {meta['steps']:,} steps"


def build_generate_tab(shelf: Shelf, session: gr.State) -> BuiltTab:
    """The Generate tab, its events, and the ``generate`` API endpoint."""
    with gr.Tab("Generate") as tab:
        gr.Markdown(
            "Pick a model, a digit and a temperature, and draw a grid of samples. Each image is drawn one pixel at "
            "a time, left to right, top to bottom. The seed makes a result repeatable: same seed, same dice."
        )
        guided_tour("generate")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                model = model_picker(shelf)
                digit = class_picker(shelf)
                temperature = temperature_slider("Low: safe, blurry-average choices. High: bold, noisy ones.")
                count = gr.Slider(1, MAX_SAMPLES, value=16, step=1, label="Number of samples")
                with gr.Row():
                    seed, new_seed = seed_controls()
                show_entropy = gr.Checkbox(False, label="Also show the entropy map of each sample")
                generate = gr.Button("Generate", variant="primary", size="lg")
                compare = gr.Button("Compare V1 · V2 · V3")
                strip = gr.Button(f"Temperature strip: {' · '.join(f'{t:g}' for t in STRIP_TEMPERATURES)}")
            with gr.Column(scale=3):
                caption = gr.Markdown(elem_id="generate-caption")
                grid = gr.Image(
                    label="Samples", type="pil", format="png", interactive=False, elem_classes="pixelated", height=640,
                    elem_id="generate-grid",
                    buttons=["download", "fullscreen"],
                )
                entropy = gr.Image(
                    label="Entropy of each step (bright: the model was unsure)", type="pil", format="png", visible=False,
                    interactive=False, elem_classes="pixelated", height=640, buttons=["download", "fullscreen"],
                )
        with gr.Column(visible=False, elem_id="temperature-strip") as strip_box:
            strip_caption = gr.Markdown()
            strip_image = gr.Image(label="The same dice at each temperature", type="pil", format="png",
                                   interactive=False, elem_classes="pixelated", height=300,
                                   buttons=["download", "fullscreen"])
        with gr.Column(visible=False, elem_id="compare") as comparison:
            compare_caption = gr.Markdown()
            with gr.Row():
                compared = [
                    gr.Image(label=model_title(kind), type="pil", format="png", interactive=False, elem_classes="pixelated",
                             height=420, buttons=["download", "fullscreen"])
                    for kind in ("v1", "v2", "v3")
                ]

        @friendly
        def on_generate(name, digit_value, t, n, seed_value, new_each_time, with_entropy, workspace):
            seed_value = next_seed(seed_value, new_each_time)
            trace, model = sample_model(shelf, workspace, name, digit_value, t, n, seed_value)
            captioned = model.conditional and digit_value == ALL_CLASSES
            return (
                grid_picture(trace, shelf.class_names(model) if captioned else None),
                gr.Image(entropy_picture(trace) if with_entropy else None, visible=bool(with_entropy)),
                trace.seed,
                summary(name, model, trace, digit_value),
            )

        generate.click(
            on_generate,
            inputs=[model, digit, temperature, count, seed, new_seed, show_entropy, session],
            outputs=[grid, entropy, seed, caption],
            concurrency_id="sampling", concurrency_limit=2, api_visibility="private",
        )

        @friendly
        def on_compare(digit_value, t, n, seed_value, new_each_time, workspace):
            kinds = shelf.by_kind()
            if not kinds:
                raise gr.Error(shelf.hint(), print_exception=False)
            seed_value = next_seed(seed_value, new_each_time)
            pictures = []
            for kind in ("v1", "v2", "v3"):
                if kind not in kinds:
                    pictures.append(gr.Image(None, label=f"{model_title(kind)}: no pretrained checkpoint"))
                    continue
                trace, _ = sample_model(shelf, workspace, kinds[kind], digit_value, t, n, seed_value)
                pictures.append(gr.Image(grid_picture(trace), label=model_title(kind)))
            shown = "digits (one of each in turn)" if digit_value == ALL_CLASSES else f"digit {digit_value}"
            text = (
                f"**V1 · V2 · V3 with the same {shown}, temperature {t:g} and seed {seed_value}** (V1 and V2 ignore the digit). "
                "V1 sees only the 28 previous pixels. V2 also knows which row and column it is drawing. "
                "V3 adds learned token embeddings and the class: the only one you can ask for a digit."
            )
            return (gr.Column(visible=True), text, seed_value, *pictures)

        compare.click(
            on_compare,
            inputs=[digit, temperature, count, seed, new_seed, session],
            outputs=[comparison, compare_caption, seed, *compared],
            concurrency_id="sampling", concurrency_limit=2, api_visibility="private", scroll_to_output=True,
        )

        @friendly
        def on_strip(name, digit_value, seed_value, new_each_time, workspace):
            seed_value = next_seed(seed_value, new_each_time)
            model = shelf.get(name, workspace)
            names = shelf.class_names(model)
            label = check_class(model, digit_value, names)
            label = 0 if label is None else label
            traces = experiments.temperature_strip(model, STRIP_TEMPERATURES, label, check_seed(seed_value))
            class_name = names[label] if model.conditional else None
            what = f"class “{class_name}”" if class_name else "no class (this model ignores it)"
            text = (
                f"**{name}**, {what}, seed **{seed_value}** at four temperatures. Every pixel rolls the same dice; "
                "only the temperature differs. Low: the likeliest grey level wins almost every time. "
                "High: unlikely levels get a real chance, and noise creeps in."
            )
            return gr.Column(visible=True), text, stepview.temperature_row(traces, 10), seed_value

        strip.click(
            on_strip, inputs=[model, digit, seed, new_seed, session], outputs=[strip_box, strip_caption, strip_image, seed],
            concurrency_id="sampling", concurrency_limit=2, api_visibility="private", scroll_to_output=True,
        )

        gr.on(
            triggers=[],
            fn=generate_endpoint(shelf),
            inputs=[model, digit, temperature, count, seed, session],
            outputs=[grid],
            api_name="generate",
            concurrency_id="sampling", concurrency_limit=2,
        )

        model.change(
            lambda name, current, workspace: class_picker_for(shelf, name, workspace, current),
            inputs=[model, digit, session], outputs=[digit], api_visibility="private", queue=False,
        )
    return BuiltTab(tab, [model])
