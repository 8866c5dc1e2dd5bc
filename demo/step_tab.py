"""The Step-through tab: sample one image and play or scrub its 784 steps in the browser.

Sample sends the whole trace to the page once (``demo.player``); from then on the page draws every step
itself, so scrubbing and Play send no request. What-if (a click on a bar) runs on the server, because it needs
the model, and loads both futures into the same player. Each value registers its model and tokens with the app's
registry (``Services.register``, ``demo.where_it_looked``), so a paused player can ask where the model looked at the step on screen.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

import pixelar
from pixelar import render
from pixelar.inputs import clean_text, whole_number
from pixelar.models import IMAGE_SIZE, N_PIXELS

from .common import SAMPLING, BuiltTab, Settings, check_whole, friendly, sampler_controls
from .links import TabLink, as_flag, as_number, sampler_updates, sampler_values
from .models import Shelf, Workspace
from .player import Facts, pack_panel, payload, size_in_bytes, step_player
from .services import Services
from .text import file_name_part
from .tour import guided_tour

INTRO = (
    "Sample one image, then walk through its 784 steps. The blue outline is what the model sees: V1 to V3 only the "
    "**28 previous pixels** (plus, for V2 and V3, where it is, and for V3 the digit), V4 every earlier pixel. It "
    "gives each of the 16 grey levels a probability and draws one (orange). **Click a bar** to ask: what if this "
    "pixel were that bin? Tick **Where it looked** and pause: a heat map shows which earlier pixels moved the "
    "chosen bin's probability most (one forward and backward pass on the server, about 40 ms)."
)


@dataclass
class Generation:
    """One sampled image: its trace, and the model facts the player and the what-if need."""

    trace: pixelar.Trace
    facts: Facts
    settings: Settings


# ---- pure functions ----


def draw(services: Services, settings: Settings, workspace: Workspace | None) -> tuple[Generation, Workspace]:
    """Sample one image with ``settings``; the session's workspace (made if it has none yet)."""
    trace = services.sample(settings.model, n=1, **settings.sample_kwargs())
    uses_position = getattr(settings.model, "uses_position", True)
    facts = Facts(settings.name, uses_position, settings.class_name(int(trace.labels[0])))
    return Generation(trace, facts, settings), workspace or Workspace()


def check_what_if(at, token, k: int) -> tuple[int, int]:
    """A what-if's step and bin, checked."""
    return whole_number(at, "The what-if's step", 0, N_PIXELS - 1), whole_number(token, "The what-if's bin", 0, k - 1)


def what_if_value(services: Services, drawn: Generation, model, at: int, token: int, step: int | None = None,
                  look: bool = False) -> dict:
    """The player's value for "what if step ``at`` were bin ``token``": both futures, same seed, same dice, shown at
    ``step`` (default: ``at``)."""
    trace = drawn.trace
    kwargs = {**drawn.settings.sample_kwargs(), "labels": trace.labels, "seed": trace.seed}
    other = services.sample(model, n=1, **kwargs, prefix=trace.tokens[:, :at], forced={at: token})
    looks = services.register(model, [trace.tokens[0], other.tokens[0]], int(trace.labels[0]))
    return player_value(drawn, what_if_caption(trace, other, at, token), at if step is None else step, other, (at, token),
                        looks, look)


def describe(settings: Settings, trace: pixelar.Trace) -> str:
    """The player's caption, plain text (the page shows it with ``textContent``): model, class and settings."""
    what = f"class “{settings.class_name(int(trace.labels[0]))}”" if settings.model.conditional else "no class"
    return f"{clean_text(settings.shown())} · {what} · {settings.describe().replace('**', '')}"


def player_value(generation: Generation, caption: str, step: int = 0, other: pixelar.Trace | None = None,
                 forced: tuple[int, int] | None = None, looks: str | None = None, look: bool = False) -> dict:
    """The player's value: the generation alone, or (with ``other``) the original and a what-if side by side.
    ``looks``: the id of their registered maps (``demo.where_it_looked.register``); ``look``: "Where it looked" ticked."""
    trace = generation.trace
    if other is None:
        panels = [pack_panel(trace)]
    else:
        at, token = forced
        panels = [pack_panel(trace, title=f"original: bin {int(trace.tokens[0, at])} at step {at}"),
                  pack_panel(other, title=f"what if: bin {token}", forced_step=at)]
    return payload(panels, trace, generation.facts, caption, step, looks, look)


def what_if_caption(trace: pixelar.Trace, other: pixelar.Trace, at: int, token: int) -> str:
    was = int(trace.tokens[0, at])
    where = f"step {at} (row {at // IMAGE_SIZE}, column {at % IMAGE_SIZE})"
    if token == was:
        return f"What if {where} were bin {token}? That is the bin the model drew, so nothing changes."
    changed = int((other.tokens[0] != trace.tokens[0]).sum()) - 1
    return (
        f"What if {where} were bin {token} instead of {was}? Same seed, same dice: "
        f"{changed} later pixel{'s' * (changed != 1)} came out differently because of that one pixel."
    )


# ---- layout and wiring ----


def build_step_tab(shelf: Shelf, session: gr.State, services: Services) -> BuiltTab:
    """The Step-through tab and its events; samples and maps go through the app's ``services``."""
    with gr.Tab("Step through", id="step", elem_id="tab-step") as tab:
        generation = gr.State(None)
        with gr.Row(elem_classes="tab-body"):
            with gr.Column(scale=1, min_width=420, elem_classes="controls"):
                sample = gr.Button("Sample", variant="primary", size="lg", elem_id="step-sample", render=False)
                controls = sampler_controls(shelf, session, with_all=False, after_class=sample.render)
                gif = gr.DownloadButton("Download as a GIF", value=None, interactive=False, size="sm")
                size_note = gr.Markdown(elem_id="step-size-note", elem_classes="small-note")
                gr.Markdown(INTRO, elem_classes="small-note")
                guided_tour("step")
            with gr.Column(scale=3, min_width=320):
                player = step_player(services.where_it_looked)

        def drawn_for(settings: Settings, workspace: Workspace | None, step: int = 0, what_if=None, look=False):
            """Sample one image (and, given ``what_if`` = (step, bin), its what-if): every output of a Sample."""
            drawn, workspace = draw(services, settings, workspace)
            gif_name = f"pixelar-{file_name_part(settings.name)}-seed{drawn.trace.seed}.gif"
            path = render.generation_gif(drawn.trace, workspace.folder / gif_name)
            if what_if is None:
                looks = services.register(settings.model, [drawn.trace.tokens[0]], int(drawn.trace.labels[0]))
                value = player_value(drawn, describe(settings, drawn.trace), step, looks=looks, look=look)
            else:
                value = what_if_value(services, drawn, settings.model, *what_if, step, look)
            note = f"Sent to the page once: {size_in_bytes(value):,} bytes; the page draws every step itself."
            return drawn, drawn.trace.seed, workspace, gr.DownloadButton(value=str(path), interactive=True), value, note

        @friendly
        def on_sample(workspace: Workspace | None, *values):
            return drawn_for(controls.read(workspace, *values), workspace)

        sample_outputs = [generation, controls.seed, session, gif, player, size_note]
        sample.click(
            on_sample, inputs=[session, *controls.inputs], outputs=sample_outputs,
            **SAMPLING, api_visibility="private", show_progress_on=[player],
        )

        @friendly
        def on_what_if(drawn: Generation | None, workspace: Workspace | None, click: gr.EventData):
            if drawn is None:
                raise ValueError("Press Sample first: a what-if changes one pixel of a sampled image.")
            # the player's {index: step, value: bin}; not gr.SelectData, which fails inside Gradio on other data
            chosen = click._data if isinstance(click._data, dict) else {}
            at, token = check_what_if(chosen.get("index"), chosen.get("value"), drawn.trace.k)
            return what_if_value(services, drawn, shelf.get(drawn.settings.name, workspace), at, token)

        player.select(on_what_if, inputs=[generation, session], outputs=[player],
                      **SAMPLING, api_visibility="private", show_progress="hidden")

        def open_link(values: dict[str, str], workspace: Workspace | None) -> dict:
            inputs = sampler_values(controls, values)
            settings = controls.read(workspace, *inputs)
            step = check_whole(as_number(values.get("step", "0")), "The link's step", 0, N_PIXELS)
            what_if = None
            if "whatif" in values:
                at, _, token = values["whatif"].partition(":")
                what_if = check_what_if(as_number(at), as_number(token), settings.model.k)
            outputs = drawn_for(settings, workspace, step, what_if, as_flag(values.get("look"), False))
            return {**sampler_updates(controls, inputs), **dict(zip(sample_outputs, outputs))}

        link = TabLink("step", controls.link_keys(), open_link, [*controls.inputs, *sample_outputs],
                       extra_keys=("step", "whatif", "look"))
    return BuiltTab(tab, [controls.model], link)
