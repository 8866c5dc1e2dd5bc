"""The Explore tab: a real held-out image, completed by a model from its top rows, and each model's surprise at
every one of its pixels. The images come from the data set the chosen model was trained on."""
from __future__ import annotations

import gradio as gr
import numpy as np

import pixelar
from pixelar import experiments, render
from pixelar.interface import PixelModel
from pixelar.models import IMAGE_SIZE

from . import pictures
from .common import SAMPLING, BuiltTab, Settings, check_whole, friendly, model_picker, sampler_controls
from .data import DataSets
from .links import picker_link
from .models import Shelf, model_title
from .services import Services
from .text import as_html, as_markdown
from .tour import guided_tour

DEFAULT_DATASET = "mnist-5k"  # for models whose checkpoint does not say what they were trained on
MAX_COMPLETIONS = 8
INTRO = ("Take a **real** image the models never trained on. Let a model finish it from its top rows, or see how "
         "surprised each model is by each of its pixels.")


# ---- pure functions ----


def dataset_of(model: PixelModel) -> str:
    return model.metadata.get("dataset") or DEFAULT_DATASET


def article(word: str) -> str:
    """``a 3``, ``an 8``, ``a T-shirt/top``."""
    return f"an {word}" if word[:1].lower() in "aeio8" or word in ("11", "18") else f"a {word}"


def held_out(data_sets: DataSets, model: PixelModel) -> pixelar.Split:
    """The held-out images of the data set ``model`` was trained on (or of the same kind, offline)."""
    loaded, _ = data_sets.load(dataset_of(model))
    if list(loaded.class_names) != Shelf.class_names(model):
        raise ValueError(f"the {dataset_of(model)} images this model was trained on are not available here")
    return loaded.held_out


def real_image(data_sets: DataSets, model: PixelModel, index) -> tuple[np.ndarray, int, int]:
    """Held-out image ``index`` of the model's data set: its grey levels (784,), its class, the checked index."""
    split = held_out(data_sets, model)
    index = check_whole(index, "Held-out image number", 0, len(split) - 1)
    grey, label = experiments.real_image(split, index)
    return grey, label, index


def real_picture(grey: np.ndarray):
    return render.grey_image(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, 10)


def complete(services: Services, settings: Settings, grey: np.ndarray, label: int, keep_rows: int, n: int) -> tuple:
    """``n`` completions of a real image from its first ``keep_rows`` rows: (sheet, caption)."""
    model, names = settings.model, settings.class_names
    target = label if settings.label is None else settings.label
    prefix = experiments.completion_prefix(grey, model.k, keep_rows)
    trace = services.sample(model, n=n, **{**settings.sample_kwargs(), "labels": target}, prefix=prefix)
    as_what = f" as {names[target]}" if model.conditional else ""
    captions = [f"real {names[label]}"] + [f"#{i + 1}{as_what}" for i in range(len(trace))]
    sheet = pictures.completion_sheet(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, trace, keep_rows, captions)
    how = (f"asked to finish it as {as_markdown(article(names[target]))}" if model.conditional
           else "which does not know the class")
    text = (
        f"The first **{keep_rows} rows** (above the red line) are the real {as_markdown(names[label])}; "
        f"**{as_markdown(settings.shown())}** "
        f"({model_title(model.name)}), {how}, drew the rest {len(trace)} times ({settings.describe()})."
    )
    return sheet, text


def surprise(models: dict[str, PixelModel], dataset: str, grey: np.ndarray, label: int, names: list[str]) -> tuple:
    """Each model's surprise at each pixel of a real image: (sheet, caption)."""
    maps = experiments.surprise(models, grey, label)
    sheet = pictures.surprise_sheet(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, maps)
    text = (
        f"How surprised each model trained on {as_markdown(dataset)} is by each pixel of this real "
        f"**{as_markdown(names[label])}** "
        f"(−log₂ of the probability it gave the true grey level; bright: unexpected). {fewest_bits(maps)}"
    )
    return sheet, text


def fewest_bits(maps: dict) -> str:
    """Which model needs the fewest bits, among models with the same K only: a blind guess costs log₂ K bits a
    pixel, so bits over 4 bins and over 16 measure different images."""
    by_k: dict[int, list[str]] = {}
    for name, found in maps.items():
        by_k.setdefault(found.k, []).append(name)
    lines = []
    for k, names in sorted(by_k.items(), reverse=True):
        best = min(names, key=lambda m: maps[m].total_bits)
        among = f"of the {len(names)} models at K {k}" if len(names) > 1 else f"the only model at K {k}"
        lines.append(f"Fewest bits {among}: **{as_markdown(best)}** ({maps[best].bits_per_pixel:.2f} bits per pixel; "
                     f"a blind guess over {k} bins is log₂ {k} = {maps[best].blind_guess:.2f}).")
    if len(by_k) > 1:
        lines.append("Bits at different K do not compare: fewer bins make a coarser image, cheaper to describe.")
    return " ".join(lines)


def models_of_the_same_kind(shelf: Shelf, workspace, model: PixelModel) -> dict[str, PixelModel]:
    """Every model on offer that was trained on the same kind of images as ``model``, by display name."""
    kind = pixelar.data.class_names(dataset_of(model))
    found = {}
    for _, other in shelf.choices(workspace):
        candidate = shelf.get(other, workspace)
        if pixelar.data.class_names(dataset_of(candidate)) == kind:
            found[other.upper() if other == candidate.name else other] = candidate
    return found


# ---- layout and wiring ----


def build_explore_tab(shelf: Shelf, data_sets: DataSets, session: gr.State, services: Services) -> BuiltTab:
    """The Explore tab and its events."""
    with gr.Tab("Explore", id="explore", elem_id="tab-explore") as tab:
        with gr.Row(elem_classes="tab-body"):
            with gr.Column(scale=1, min_width=300, elem_classes="controls"):
                model = model_picker(shelf, "explore-model")
                with gr.Row(equal_height=True):
                    index = gr.Number(value=0, label="Held-out image number", elem_id="explore-index", min_width=120,
                                      info="0 to 499, from mnist-5k's held-out images; Enter shows it")
                    wanted = gr.Dropdown([(n, i) for i, n in enumerate(pixelar.data.DIGITS)], value=0,
                                         label="Class of the image", min_width=140, elem_id="explore-class")
                random_pick = gr.Button("Random image of this class", size="sm")
                real = gr.Image(label="The real image", type="pil", format="png", interactive=False,
                                elem_classes="pixelated", height=200, elem_id="explore-real", show_label=False)
                real_caption = gr.Markdown(elem_id="explore-real-caption")
                gr.Markdown(INTRO, elem_classes="small-note")
                guided_tour("explore")
            with gr.Column(scale=3, min_width=320):
                with gr.Tabs():
                    with gr.Tab("Complete it", elem_id="explore-complete-tab"):
                        with gr.Row():
                            with gr.Column(scale=2, min_width=260):
                                with gr.Row():
                                    keep_rows = gr.Number(14, label="Real rows to keep", info=f"0 to {IMAGE_SIZE}",
                                                          elem_id="keep-rows", min_width=120)
                                    count = gr.Number(4, label="Completions", info=f"1 to {MAX_COMPLETIONS}",
                                                      elem_id="completions", min_width=120)
                                complete_button = gr.Button("Complete", variant="primary", size="lg", elem_id="complete-button")
                            with gr.Column(scale=3, min_width=260):
                                controls = sampler_controls(shelf, session, with_all=False, model=model,
                                                            settings_label="Temperature, top-k, top-p, seed")
                        completion_caption = gr.Markdown(elem_id="complete-caption")
                        completions = gr.Image(label="The real image, then the completions", type="pil", format="png",
                                               interactive=False, elem_classes="pixelated result", show_label=False,
                                               buttons=["download", "fullscreen"], elem_id="complete-image")
                    with gr.Tab("Surprise map", elem_id="explore-surprise-tab"):
                        surprise_caption = gr.Markdown(elem_id="surprise-caption")
                        surprise_map = gr.Image(label="Surprise of each pixel, bits (bright: the model did not expect it)",
                                                type="pil", format="png", interactive=False, show_label=False,
                                                elem_classes="pixelated result", buttons=["download", "fullscreen"],
                                                elem_id="surprise-image")

        @friendly
        def on_model(name, workspace):
            """Refit the pickers to a newly chosen model: its classes (the class box's value follows the image shown),
            and the range of its data set's images."""
            model = shelf.get(name, workspace)
            split = held_out(data_sets, model)
            names = Shelf.class_names(model)
            info = f"0 to {len(split) - 1}, from {as_html(dataset_of(model))}'s held-out images; Enter shows it"
            return gr.Dropdown(choices=[(n, i) for i, n in enumerate(names)]), gr.Number(info=info)

        @friendly
        def on_random(name, wanted, workspace):
            model = shelf.get(name, workspace)
            wanted = check_whole(wanted, "Class of the image", 0, len(Shelf.class_names(model)) - 1)
            return experiments.random_index_of_class(held_out(data_sets, model), wanted)

        @friendly
        def on_image(name, index, workspace):
            """Show the picked image, make its own class both the class box's and the one to finish it as, and clear
            the stale completion; an emptied box waits quietly for a number."""
            if index is None or index == "":
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            model = shelf.get(name, workspace)
            grey, label, index = real_image(data_sets, model, index)
            shown = as_markdown(article(Shelf.class_names(model)[label]))
            text = f"Held-out image **#{index}** of {as_markdown(dataset_of(model))}: {shown}."
            return real_picture(grey), text, label, label if model.conditional else gr.skip(), None, ""

        @friendly
        def on_complete(workspace, index, keep_rows, n, *values):
            settings = controls.read(workspace, *values)
            grey, label, _ = real_image(data_sets, settings.model, index)
            keep_rows = check_whole(keep_rows, "Real rows to keep", 0, IMAGE_SIZE)
            sheet, text = complete(services, settings, grey, label, keep_rows, check_whole(n, "Completions", 1, MAX_COMPLETIONS))
            return sheet, text, settings.seed

        @friendly
        def on_surprise(name, index, workspace):
            if index is None or index == "":
                return gr.skip(), gr.skip()
            model = shelf.get(name, workspace)
            grey, label, _ = real_image(data_sets, model, index)
            return surprise(models_of_the_same_kind(shelf, workspace, model), dataset_of(model), grey, label,
                            Shelf.class_names(model))

        private = {"api_visibility": "private"}
        show_image = dict(fn=on_image, inputs=[model, index, session],
                          outputs=[real, real_caption, wanted, controls.digit, completions, completion_caption],
                          trigger_mode="always_last", show_progress_on=[real], **private)
        map_surprise = dict(fn=on_surprise, inputs=[model, index, session], outputs=[surprise_map, surprise_caption],
                            **SAMPLING, **private)
        model.change(on_model, [model, session], [wanted, index], queue=False, **private)
        random_pick.click(on_random, [model, wanted, session], [index], queue=False, **private).success(
            **show_image).success(**map_surprise)
        # the real image, and everything measured on it, follow the model and the image number: a typed number when
        # the box is left (Enter leaves it), not at each keystroke (600 on the way to 6000 would be refused too)
        index.submit(None, js="() => document.activeElement.blur()", **private)
        gr.on([index.blur, model.change, tab.select], **show_image).success(**map_surprise)
        complete_button.click(
            on_complete, [session, index, keep_rows, count, *controls.inputs],
            [completions, completion_caption, controls.seed], **SAMPLING, show_progress_on=[completions],
            **private,
        )
    return BuiltTab(tab, [model], picker_link("explore", model, shelf))
