"""The Explore tab: a real held-out image, completed by a model from its top rows, and each model's surprise at
every one of its pixels. The images come from the data set the chosen model was trained on."""
from __future__ import annotations

import gradio as gr

import pixelar
from pixelar import experiments, render
from pixelar.models import IMAGE_SIZE, PixelMLP

from . import pictures, serving
from .common import BuiltTab, Slider, check_whole, friendly, model_picker, sampler_controls
from .data import DataSets
from .models import Shelf, model_title
from .tour import guided_tour

DEFAULT_DATASET = "mnist-5k"  # for models whose checkpoint does not say what they were trained on
MAX_COMPLETIONS = 8
INTRO = ("Take a **real** image the models never trained on. Let a model finish it from its top rows, or see how "
         "surprised each model is by each of its pixels.")


# ---- pure functions ----


def dataset_of(model: PixelMLP) -> str:
    return model.metadata.get("dataset") or DEFAULT_DATASET


def article(word: str) -> str:
    """``a 3``, ``an 8``, ``a T-shirt/top``."""
    return f"an {word}" if word[:1].lower() in "aeio8" or word in ("11", "18") else f"a {word}"


class Explorer:
    """The tab's handlers: they share the checkpoint shelf and the server's data sets."""

    def __init__(self, shelf: Shelf, data_sets: DataSets):
        self.shelf, self.data_sets = shelf, data_sets
        self.controls = None  # the tab's sampler controls, once built

    def held_out(self, model: PixelMLP) -> pixelar.Split:
        """The held-out images of the data set ``model`` was trained on (or of the same kind, offline)."""
        loaded, _ = self.data_sets.load(dataset_of(model))
        if list(loaded.class_names) != Shelf.class_names(model):
            raise ValueError(f"the {dataset_of(model)} images this model was trained on are not available here")
        return loaded.held_out

    def real(self, name, index, workspace) -> tuple[PixelMLP, object, int, int]:
        """The chosen model, held-out image ``index`` (grey levels, class) and the checked index."""
        model = self.shelf.get(name, workspace)
        split = self.held_out(model)
        index = check_whole(index, "Held-out image number", 0, len(split) - 1)
        grey, label = experiments.real_image(split, index)
        return model, grey, label, index

    @friendly
    def on_model(self, name, workspace):
        """Refit the pickers to a newly chosen model: its classes, and the range of its data set's images."""
        model = self.shelf.get(name, workspace)
        split = self.held_out(model)
        names = Shelf.class_names(model)
        return (
            gr.Dropdown(choices=[(n, i) for i, n in enumerate(names)], value=0),
            gr.Number(info=f"0 to {len(split) - 1}, from {dataset_of(model)}'s held-out images"),
        )

    @friendly
    def on_random(self, name, wanted, workspace):
        model = self.shelf.get(name, workspace)
        return experiments.random_index_of_class(self.held_out(model), int(wanted))

    @friendly
    def on_image(self, name, index, workspace):
        """Show the picked image, make its own class the one to finish it as, and clear the stale completion;
        an emptied box waits quietly for a number."""
        if index is None or index == "":
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        model, grey, label, index = self.real(name, index, workspace)
        names = Shelf.class_names(model)
        picture = render.grey_image(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, 10)
        text = f"Held-out image **#{index}** of {dataset_of(model)}: {article(names[label])}."
        return picture, text, label if model.conditional else gr.skip(), None, ""

    @friendly
    def on_complete(self, workspace, index, keep_rows, n, *values):
        settings = self.controls.read(workspace, *values)
        model, grey, label, index = self.real(settings.name, index, workspace)
        names = settings.class_names
        target = label if settings.label is None else settings.label
        keep_rows = check_whole(keep_rows, "Real rows to keep", 0, IMAGE_SIZE)
        n = check_whole(n, "Completions", 1, MAX_COMPLETIONS)
        prefix = experiments.real_tokens(grey, model.k)[: keep_rows * IMAGE_SIZE]
        trace = serving.sample(model, n=n, **{**settings.sample_kwargs(), "labels": target}, prefix=prefix)
        as_what = f" as {names[target]}" if model.conditional else ""
        captions = [f"real {names[label]}"] + [f"#{i + 1}{as_what}" for i in range(len(trace))]
        sheet = pictures.completion_sheet(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, trace, keep_rows, captions)
        how = f"asked to finish it as {article(names[target])}" if model.conditional else "which does not know the class"
        text = (
            f"The first **{keep_rows} rows** (above the red line) are the real {names[label]}; **{settings.name}** "
            f"({model_title(model.name)}), {how}, drew the rest {len(trace)} times ({settings.describe()})."
        )
        return sheet, text, settings.seed

    @friendly
    def on_surprise(self, name, index, workspace):
        if index is None or index == "":
            return gr.skip(), gr.skip()
        model, grey, label, _ = self.real(name, index, workspace)
        names = Shelf.class_names(model)
        kind = pixelar.data.class_names(dataset_of(model))
        same_kind = {}
        for _, other in self.shelf.choices(workspace):
            candidate = self.shelf.get(other, workspace)
            if pixelar.data.class_names(dataset_of(candidate)) == kind:
                same_kind[other.upper() if other == candidate.name else other] = candidate
        maps = experiments.surprise(same_kind, grey, label)
        sheet = pictures.surprise_sheet(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, maps)
        best = min(maps, key=lambda m: maps[m].total_bits)
        text = (
            f"How surprised each model trained on {dataset_of(model)} is by each pixel of this real "
            f"**{names[label]}** (−log₂ of the probability it gave the true grey level; bright: unexpected). "
            f"Fewest bits in total: **{best}** ({maps[best].bits_per_pixel:.2f} bits per pixel; 4.00 is a blind guess)."
        )
        return sheet, text


# ---- layout and wiring ----


def build_explore_tab(shelf: Shelf, data_sets: DataSets, session: gr.State) -> BuiltTab:
    """The Explore tab and its events."""
    explorer = Explorer(shelf, data_sets)
    with gr.Tab("Explore", elem_id="tab-explore") as tab:
        with gr.Row(elem_classes="tab-body"):
            with gr.Column(scale=1, min_width=300, elem_classes="controls"):
                model = model_picker(shelf, "explore-model")
                with gr.Row(equal_height=True):
                    index = gr.Number(value=0, label="Held-out image number", elem_id="explore-index", min_width=120,
                                      info="0 to 499, from mnist-5k's held-out images")
                    wanted = gr.Dropdown([(n, i) for i, n in enumerate(pixelar.data.DIGITS)], value=3,
                                         label="Class", min_width=140, elem_id="explore-class")
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
                                    keep_rows = Slider(0, IMAGE_SIZE, value=14, step=1, label="Real rows to keep",
                                                       elem_id="keep-rows", min_width=200)
                                    count = Slider(1, MAX_COMPLETIONS, value=4, step=1, label="Completions",
                                                   min_width=200)
                                complete = gr.Button("Complete", variant="primary", size="lg", elem_id="complete-button")
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
        explorer.controls = controls

        private = {"api_visibility": "private"}
        model.change(explorer.on_model, [model, session], [wanted, index], queue=False, **private)
        random_pick.click(explorer.on_random, [model, wanted, session], [index], queue=False, **private)
        # the real image, and everything measured on it, follow the model and the image number
        gr.on([index.change, model.change, tab.select], explorer.on_image, [model, index, session],
              [real, real_caption, controls.digit, completions, completion_caption], trigger_mode="always_last",
              show_progress_on=[real], **private).success(
            explorer.on_surprise, [model, index, session], [surprise_map, surprise_caption],
            concurrency_id="sampling", **private,
        )
        complete.click(
            explorer.on_complete, [session, index, keep_rows, count, *controls.inputs],
            [completions, completion_caption, controls.seed], concurrency_id="sampling", show_progress_on=[completions],
            **private,
        )
    return BuiltTab(tab, [model])
