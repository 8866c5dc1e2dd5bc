"""The Step-through tab: sample one image, keep its whole trace, and scrub or play through its 784 steps.

Every redraw comes from the stored trace (``pixelar.stepview``); moving the slider never runs the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

import pixelar
from pixelar import experiments, render, stepview
from pixelar.models import N_PIXELS

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
from .models import Shelf, Workspace
from .tour import guided_tour

TICK_SECONDS = 0.25
SPEEDS = [("1 pixel", 1), ("4 pixels", 4), ("1 row (28 pixels)", 28)]
NOTHING_YET = "Press **Sample** to draw an image, then move the step slider or press **Play**."
WHAT_IF_HINT = (
    "**What if?** Click a bar of the chart above (or pick a bin here) to force this step's pixel to that bin. "
    "The rest of the image is drawn again with the same seed, so every later pixel rolls the same dice."
)


@dataclass
class Generation:
    """One sampled image's trace, and what the captions need to know about the model that drew it."""

    trace: pixelar.Trace
    model: str
    uses_position: bool
    class_name: str | None  # None: the model ignores the class


def view(generation: Generation | None, step, temperature) -> tuple:
    """The outputs for one step: canvas, bars, entropy map, chosen-probability map, entropy, p(chosen), caption."""
    if generation is None:
        return None, None, None, None, None, None, NOTHING_YET
    shown = stepview.render_step(
        generation.trace, step, temperature=check_temperature(temperature),
        uses_position=generation.uses_position, class_name=generation.class_name,
    )
    return (
        shown.canvas, shown.bars, shown.entropy_map, shown.chosen_prob_map,
        None if shown.entropy is None else round(shown.entropy, 3),
        None if shown.chosen_prob is None else round(shown.chosen_prob, 3),
        f"**{generation.model}** · {shown.caption}",
    )


def build_step_tab(shelf: Shelf, session: gr.State) -> BuiltTab:
    """The Step-through tab and its events."""
    with gr.Tab("Step through") as tab:
        gr.Markdown(
            "Sample one image, then walk through its 784 steps. At each step the model sees only the **28 previous "
            "pixels** (blue outline; start tokens before the first row), plus, for V2 and V3, where it is, and for "
            "V3, the digit. It outputs a probability for each of the 16 intensity bins and draws one (orange)."
        )
        guided_tour("step")
        generation = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                model = model_picker(shelf)
                digit = class_picker(shelf, with_all=False)
                temperature = temperature_slider(
                    "Used by Sample. Move it afterwards to see how this step's choice would reshape.", "step-temperature"
                )
                with gr.Row():
                    seed, new_seed = seed_controls()
                sample = gr.Button("Sample", variant="primary", size="lg")
                speed = gr.Radio(SPEEDS, value=4, label="Play speed (per tick of 0.25 s)")
                gif = gr.DownloadButton("Download the drawing as a GIF", value=None, interactive=False)
            with gr.Column(scale=3):
                with gr.Row(equal_height=True):
                    step = gr.Slider(0, N_PIXELS, value=0, step=1, label="Step (the pixel being chosen)", scale=5,
                                     elem_id="step-slider")
                    play = gr.Button("▶ Play", min_width=90, scale=1)
                    pause = gr.Button("Pause", min_width=90, scale=1)
                caption = gr.Markdown(NOTHING_YET, elem_id="step-caption")
                with gr.Row():
                    canvas = gr.Image(label="The image so far", type="pil", format="png", interactive=False,
                                      elem_classes="pixelated", height=480, buttons=["fullscreen"], elem_id="step-canvas")
                    with gr.Column():
                        bars = gr.Image(label="Probability of each intensity bin", type="pil", format="png", elem_id="step-bars",
                                        interactive=False, height=340, buttons=["fullscreen"])
                        with gr.Row():
                            entropy = gr.Number(label="Entropy (bits)", interactive=False)
                            chosen = gr.Number(label="p(chosen bin)", interactive=False)
                with gr.Group(elem_id="what-if"):
                    what_if_caption = gr.Markdown(WHAT_IF_HINT, elem_id="what-if-caption")
                    forced_bin = gr.Radio(list(range(16)), value=None, label="What if this pixel were bin…",
                                          elem_id="what-if-bin")
                    futures = gr.Image(label="Two futures: the original (left) and the what-if (right)", type="pil",
                                       format="png", interactive=False, elem_classes="pixelated", height=400,
                                       buttons=["fullscreen"], elem_id="what-if-image")
                with gr.Row():
                    entropy_map = gr.Image(label="Entropy of each step so far", type="pil", format="png",
                                           interactive=False, elem_classes="pixelated", height=340, buttons=["fullscreen"])
                    chosen_map = gr.Image(label="Probability of each choice so far", type="pil", format="png",
                                          interactive=False, elem_classes="pixelated", height=340, buttons=["fullscreen"])
        timer = gr.Timer(TICK_SECONDS, active=False)
        views = [canvas, bars, entropy_map, chosen_map, entropy, chosen, caption]

        @friendly
        def on_sample(name, digit_value, t, seed_value, new_each_time, at, workspace: Workspace | None):
            seed_value = next_seed(seed_value, new_each_time)
            model = shelf.get(name, workspace)
            names = shelf.class_names(model)
            label = check_class(model, digit_value, names)
            trace = pixelar.sample(model, 1, labels=label, temperature=check_temperature(t), seed=check_seed(seed_value))
            drawn = Generation(trace, name, model.uses_position, names[trace.labels[0]] if model.conditional else None)
            workspace = workspace or Workspace()
            path = render.generation_gif(trace, workspace.folder / f"pixelar-{name}-seed{trace.seed}.gif")
            return (drawn, trace.seed, workspace, gr.DownloadButton(value=str(path), interactive=True),
                    gr.Radio(list(range(trace.k)), value=None), None, WHAT_IF_HINT, *view(drawn, at, t))

        sample.click(
            on_sample,
            inputs=[model, digit, temperature, seed, new_seed, step, session],
            outputs=[generation, seed, session, gif, forced_bin, futures, what_if_caption, *views],
            concurrency_id="sampling", concurrency_limit=2, api_visibility="private",
        )

        @friendly
        def on_what_if(drawn: Generation | None, at, token, workspace: Workspace | None):
            if drawn is None:
                raise ValueError("Press Sample first: a what-if changes one pixel of a sampled image.")
            at = stepview.check_step(at)
            if at == N_PIXELS:
                raise ValueError("Move the step slider to a pixel (0 to 783) first: at 784 the image is finished.")
            if token is None:
                return gr.skip(), gr.skip()
            trace = drawn.trace
            other = experiments.what_if(shelf.get(drawn.model, workspace), trace, at, token)
            was = int(trace.tokens[0, at])
            text = (
                f"**Step {at}** (row {at // 28}, column {at % 28}): the model drew bin {was} "
                f"(p = {trace.probs[0, at, was]:.2f}); here it is forced to bin {token} "
                f"(p = {trace.probs[0, at, int(token)]:.2f}). Same seed {trace.seed} and temperature "
                f"{trace.temperature:g}: everything after the orange frame differs only because of that one pixel."
            )
            return stepview.what_if_pair(trace, other, at), text

        def on_bar_click(drawn: Generation | None, click: gr.SelectData):
            k = drawn.trace.k if drawn is not None else 16
            chosen_bin = stepview.bin_at(click.index[0], k)
            return gr.skip() if chosen_bin is None else chosen_bin

        what_if_io = {"inputs": [generation, step, forced_bin, session], "outputs": [futures, what_if_caption]}
        forced_bin.input(on_what_if, **what_if_io, concurrency_id="sampling", api_visibility="private")
        bars.select(on_bar_click, inputs=[generation], outputs=[forced_bin], api_visibility="private", queue=False).then(
            on_what_if, **what_if_io, concurrency_id="sampling", api_visibility="private",
        )

        redraw = friendly(view)
        for trigger in (step.input, step.release, temperature.input):
            trigger(redraw, inputs=[generation, step, temperature], outputs=views, trigger_mode="always_last",
                    concurrency_limit=None, api_visibility="private", show_progress="hidden")

        @friendly
        def on_tick(drawn, at, per_tick, t):
            at = min(N_PIXELS, int(at) + int(per_tick))
            keep_playing = drawn is not None and at < N_PIXELS
            return (at, gr.Timer(active=keep_playing), *view(drawn, at, t))

        timer.tick(on_tick, inputs=[generation, step, speed, temperature], outputs=[step, timer, *views],
                   concurrency_limit=None, api_visibility="private", show_progress="hidden")
        play.click(
            lambda drawn, at: (0 if at >= N_PIXELS else at, gr.Timer(active=drawn is not None)),
            inputs=[generation, step], outputs=[step, timer], api_visibility="private", queue=False,
        )
        pause.click(lambda: gr.Timer(active=False), outputs=[timer], api_visibility="private", queue=False)
        model.change(
            lambda name, current, workspace: class_picker_for(shelf, name, workspace, current, with_all=False),
            inputs=[model, digit, session], outputs=[digit], api_visibility="private", queue=False,
        )
    return BuiltTab(tab, [model])
