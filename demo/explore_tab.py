"""The Explore tab: a real held-out image, completed by a model from its top rows, and each model's surprise at
every one of its pixels. The images come from the data set the chosen model was trained on."""
from __future__ import annotations

import gradio as gr

import pixelar
from pixelar import experiments, render, stepview
from pixelar.models import IMAGE_SIZE, PixelMLP

from .common import (
    BuiltTab,
    check_class,
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
from .data import DataSets
from .models import Shelf, model_title
from .tour import guided_tour

DEFAULT_DATASET = "mnist-5k"  # for models whose checkpoint does not say what they were trained on
MAX_COMPLETIONS = 8


def dataset_of(model: PixelMLP) -> str:
    return model.metadata.get("dataset") or DEFAULT_DATASET


class Explorer:
    """The tab's handlers: they share the checkpoint shelf and the server's data sets."""

    def __init__(self, shelf: Shelf, data_sets: DataSets):
        self.shelf, self.data_sets = shelf, data_sets

    def held_out(self, model: PixelMLP) -> pixelar.Split:
        """The held-out images of the data set ``model`` was trained on (or of the same kind, offline)."""
        loaded, _ = self.data_sets.load(dataset_of(model))
        if list(loaded.class_names) != Shelf.class_names(model):
            raise ValueError(f"the {dataset_of(model)} images this model was trained on are not available here")
        return loaded.held_out

    def real(self, name, index, workspace) -> tuple[PixelMLP, pixelar.Split, object, int]:
        """The chosen model, its held-out split, and held-out image ``index`` (grey levels, class)."""
        model = self.shelf.get(name, workspace)
        split = self.held_out(model)
        grey, label = experiments.real_image(split, index)
        return model, split, grey, label

    @friendly
    def on_model(self, name, current, workspace):
        """Refit the pickers to a newly chosen model: its classes, and the range of its data set's images."""
        model = self.shelf.get(name, workspace)
        split = self.held_out(model)
        names = Shelf.class_names(model)
        return (
            class_picker_for(self.shelf, name, workspace, current, with_all=False),
            gr.Dropdown(choices=[(n, i) for i, n in enumerate(names)], value=0),
            gr.Number(maximum=len(split) - 1, info=f"0 to {len(split) - 1}, from {dataset_of(model)}'s held-out images"),
        )

    @friendly
    def on_random(self, name, wanted, workspace):
        model = self.shelf.get(name, workspace)
        return experiments.random_index_of_class(self.held_out(model), int(wanted))

    @friendly
    def on_image(self, name, index, workspace):
        """Show the picked image, and make its own class the one to finish it as."""
        model, _, grey, label = self.real(name, index, workspace)
        names = Shelf.class_names(model)
        picture = render.grey_image(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, 10)
        text = f"Held-out image **#{int(index)}** of {dataset_of(model)}: a **{names[label]}**."
        return picture, text, label

    @friendly
    def on_complete(self, name, index, keep_rows, finish_as, n, t, seed, new_each_time, workspace):
        model, _, grey, label = self.real(name, index, workspace)
        names = Shelf.class_names(model)
        target = check_class(model, finish_as, names)
        target = label if target is None else target
        if not isinstance(n, (int, float)) or not 1 <= n <= MAX_COMPLETIONS:
            raise ValueError(f"number of completions must be from 1 to {MAX_COMPLETIONS}")
        seed = next_seed(seed, new_each_time)
        trace = experiments.complete(model, grey, int(keep_rows), int(n), target, check_temperature(t), check_seed(seed))
        as_what = f" as {names[target]}" if model.conditional else ""
        captions = [f"real {names[label]}"] + [f"#{i + 1}{as_what}" for i in range(len(trace))]
        sheet = stepview.completion_sheet(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, trace, int(keep_rows), captions)
        how = f"asked to finish it as a **{names[target]}**" if model.conditional else "which does not know the class"
        text = (
            f"The first **{int(keep_rows)} rows** (above the red line) are the real {names[label]}; **{name}** "
            f"({model_title(model.name)}), {how}, drew the rest {len(trace)} times "
            f"(temperature {trace.temperature:g}, seed {trace.seed})."
        )
        return sheet, text, trace.seed

    @friendly
    def on_surprise(self, name, index, workspace):
        model, _, grey, label = self.real(name, index, workspace)
        names = Shelf.class_names(model)
        kind = pixelar.data.class_names(dataset_of(model))
        same_kind = {}
        for _, other in self.shelf.choices(workspace):
            candidate = self.shelf.get(other, workspace)
            if pixelar.data.class_names(dataset_of(candidate)) == kind:
                same_kind[other.upper() if other == candidate.name else other] = candidate
        maps = experiments.surprise(same_kind, grey, label)
        sheet = stepview.surprise_sheet(grey.reshape(IMAGE_SIZE, IMAGE_SIZE) / 255, maps)
        best = min(maps, key=lambda m: maps[m].total_bits)
        text = (
            f"How surprised each model trained on this kind of image is by each pixel of the real "
            f"**{names[label]}** (−log₂ of the probability it gave the true grey level; same scale for all). "
            f"Fewest bits in total: **{best}** ({maps[best].bits_per_pixel:.2f} bits per pixel; 4.00 is a blind guess)."
        )
        return sheet, text


def build_explore_tab(shelf: Shelf, data_sets: DataSets, session: gr.State) -> BuiltTab:
    """The Explore tab and its events."""
    explorer = Explorer(shelf, data_sets)
    with gr.Tab("Explore") as tab:
        gr.Markdown(
            "Take a **real** image the models never trained on. Let a model finish it from its top rows, or "
            "measure how surprised each model is by each of its pixels."
        )
        guided_tour("explore")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                model = model_picker(shelf, "explore-model")
                index = gr.Number(value=0, precision=0, minimum=0, label="Held-out image number", elem_id="explore-index")
                with gr.Row(equal_height=True):
                    wanted = gr.Dropdown([(n, i) for i, n in enumerate(pixelar.data.DIGITS)], value=3,
                                         label="Class", min_width=120)
                    random_pick = gr.Button("Random image of this class", min_width=120)
                real = gr.Image(label="The real image", type="pil", format="png", interactive=False,
                                elem_classes="pixelated", height=280, elem_id="explore-real")
                real_caption = gr.Markdown(elem_id="explore-real-caption")
            with gr.Column(scale=3):
                with gr.Tabs():
                    with gr.Tab("Complete it"):
                        with gr.Row():
                            keep_rows = gr.Slider(0, IMAGE_SIZE, value=14, step=1, label="Real rows to keep",
                                                  elem_id="keep-rows")
                            count = gr.Slider(1, MAX_COMPLETIONS, value=4, step=1, label="Completions")
                        with gr.Row():
                            finish_as = class_picker(shelf, with_all=False)
                            temperature = temperature_slider()
                        with gr.Row():
                            seed, new_seed = seed_controls()
                        complete = gr.Button("Complete", variant="primary", size="lg")
                        completion_caption = gr.Markdown(elem_id="complete-caption")
                        completions = gr.Image(label="The real image, then the completions", type="pil", format="png",
                                               interactive=False, elem_classes="pixelated", height=360,
                                               buttons=["download", "fullscreen"], elem_id="complete-image")
                    with gr.Tab("Surprise map"):
                        measure = gr.Button("Measure each model's surprise", variant="primary", size="lg")
                        surprise_caption = gr.Markdown(elem_id="surprise-caption")
                        surprise_map = gr.Image(label="Surprise of each pixel, bits (bright: the model did not expect it)",
                                                type="pil", format="png", interactive=False, elem_classes="pixelated",
                                                height=400, buttons=["download", "fullscreen"], elem_id="surprise-image")

        private = {"api_visibility": "private"}
        model.change(explorer.on_model, [model, finish_as, session], [finish_as, wanted, index], queue=False, **private)
        random_pick.click(explorer.on_random, [model, wanted, session], [index], queue=False, **private)
        gr.on([index.change, model.change, tab.select], explorer.on_image, [model, index, session],
              [real, real_caption, finish_as], trigger_mode="always_last", **private)
        complete.click(
            explorer.on_complete,
            [model, index, keep_rows, finish_as, count, temperature, seed, new_seed, session],
            [completions, completion_caption, seed], concurrency_id="sampling", **private,
        )
        measure.click(explorer.on_surprise, [model, index, session], [surprise_map, surprise_caption],
                      concurrency_id="sampling", **private)
    return BuiltTab(tab, [model])
