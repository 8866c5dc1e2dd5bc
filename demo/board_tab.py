"""The class board's section of the page (not a tab of its own: five tabs already fill a phone's width).

``build_board_section(board, session)`` adds, inside whatever Blocks context it is called in: the board as a table
(escaped: every name is outside text), a refresh, a sheet of samples of any entry, a publish form (a display name,
then "publish my last trained model" or an uploaded ``.safetensors``), deleting one's own entries, and a teacher's
accordion (key box; hide, show, delete, clear, freeze). ``session`` is the page's ``gr.State`` holding its
``Workspace`` (its ``token`` marks the session's own entries). The pure parts (``board_html``, the choices) are
functions of their own, for tests.
"""
from __future__ import annotations

import re

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData
from PIL import Image

from .board import NAME_CHARS, Board, BoardError, Entry
from .common import friendly
from .models import Workspace
from .text import as_html, as_markdown

BOARD_NOTE = ("Scored by the server: held-out NLL in bits per pixel on {images} held-out images of the data set each "
              "model was trained on (lower is better); class fidelity at T = 1 is the share of {per_class} samples "
              "per class that the project's classifier reads as the class asked for (a rough figure). **Bits per "
              "pixel compare only at the same K**: more grey levels mean more bits to spend, so each K has its "
              "own table.")
REFRESH_SECONDS = 3  # the page re-reads the board this often while one of its own entries is being scored


@dataclass
class BoardSection:
    """The section's parts a caller may want: the table, its refresh button, and the teacher's key box."""

    table: gr.HTML
    refresh: gr.Button
    teacher_key: gr.Textbox
    timer: gr.Timer


def _number(value, spec: str, missing: str = "–") -> str:
    return missing if value is None else format(value, spec)


def _budget(entry: Entry) -> str:
    if entry.samples_seen is None:
        return "–"
    unit = "images" if entry.batch_unit == "images" else "pairs"
    steps = f"{entry.steps:,} steps · " if entry.steps is not None else ""
    return f"{steps}{entry.samples_seen:,} {unit}"


def _minutes(seconds) -> str:
    return "–" if seconds is None else (f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s")


def _shape(entry: Entry) -> str:
    seen = "whole past" if entry.context >= 784 else f"context {entry.context}"
    return f"{as_html(entry.kind.upper())} · {seen}"


def _status(entry: Entry) -> str:
    if entry.status == "scoring":
        return "scoring…"
    if entry.status == "failed":
        return "failed: " + as_html(entry.error or "")
    return entry.status


def board_html(entries: list[Entry], token: str | None = None, teacher: bool = False) -> str:
    """The board as HTML tables, one per K, best held-out NLL first; every outside text escaped (``as_html``).
    The session's own entries are marked "(yours)"; hidden entries are listed only for the teacher."""
    if not teacher:
        entries = [e for e in entries if not e.hidden]
    if not entries:
        return "<p>The board is empty: train a model, then publish it here.</p>"
    parts = []
    for k in sorted({e.k for e in entries}):
        rows = []
        rank = 0
        for entry in (e for e in entries if e.k == k):
            rank += entry.nll is not None
            fidelity = (f"{entry.fidelity:.0%}" if entry.fidelity is not None
                        else "n/a (no class)" if not entry.conditional
                        else "–" if entry.state != "ready"
                        else "not scored: " + as_html(entry.fidelity_note or "no classifier"))
            name = as_html(entry.name) + (" <em>(yours)</em>" if entry.owned_by(token) else "")
            rows.append(
                "<tr>" + "".join(f"<td>{cell}</td>" for cell in (
                    rank if entry.nll is not None else "", f"#{entry.id}", name, _shape(entry), as_html(entry.dataset),
                    f"<b>{_number(entry.nll, '.4f')}</b>", fidelity, f"{entry.parameters:,}", _budget(entry),
                    _minutes(entry.train_seconds), _status(entry),
                )) + "</tr>"
            )
        head = "".join(f"<th>{h}</th>" for h in ("", "entry", "name", "model", "data set", "held-out NLL (bits/px)",
                                                 "fidelity T=1", "parameters", "budget", "training time", "status"))
        parts.append(f"<h4>K = {k}</h4><div style='overflow-x:auto'><table><thead><tr>{head}</tr></thead>"
                     f"<tbody>{''.join(rows)}</tbody></table></div>")
    return "".join(parts)


def entry_choices(entries: list[Entry], token: str | None = None, mine_only: bool = False,
                  teacher: bool = False) -> list[tuple[str, int]]:
    """(label, id) pairs for a picker of entries: all visible ones, the session's own, or (teacher) all."""
    picked = [e for e in entries if (teacher or not e.hidden) and (not mine_only or e.owned_by(token))]
    return [(f"#{e.id} {e.name}" + (" (hidden)" if e.hidden else ""), e.id) for e in sorted(picked, key=lambda e: e.id)]


TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{32}")  # what secrets.token_urlsafe(24) makes


def _token(workspace: Workspace | None) -> str | None:
    return workspace.token if workspace is not None else None


class CheckpointUpload(gr.File):
    """``gr.File`` that checks its own payload: a script that sends something other than one uploaded file gets a
    message (Gradio's own check of the payload would raise a validation error, a server traceback). Gradio's check
    that an uploaded path lies in its upload folder runs before, as for any file."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.api_info()  # cached from the file model, as for gr.File
        self.data_model = None  # the payload is validated in ``preprocess``

    @classmethod
    def get_block_name(cls) -> str:
        return "file"  # the page draws it as Gradio's own File

    def preprocess(self, payload):
        if payload is None:
            return None
        try:
            upload = FileData.model_validate(payload, context={"validate_meta": True})
        except (ValueError, TypeError):
            raise gr.Error("The upload must be one checkpoint file (.safetensors).", print_exception=False) from None
        return super().preprocess(upload)


def remembered_token(board: Board) -> gr.BrowserState:
    """The board token this browser keeps (encrypted with the board's secret), so that a student's entries stay
    theirs after a reload or a restart of the server."""
    return gr.BrowserState(None, storage_key="pixelar-board-token", secret=board.browser_secret)


def restore_session(kept, workspace: Workspace | None) -> tuple[Workspace, str]:
    """The page's workspace on load, holding the token its browser kept (a new one if it kept none, or anything else);
    and the token to keep."""
    if workspace is None:
        workspace = Workspace(kept if isinstance(kept, str) and TOKEN_PATTERN.fullmatch(kept) else None)
    return workspace, workspace.token


def build_board_section(board: Board, session: gr.State, notice: str | None = None, open_triggers=(),
                        restored=None) -> BoardSection:
    """The class board inside the current Blocks context (e.g. at the bottom of the Train tab). ``open_triggers``:
    events that re-read the board for the session (the tab's ``select``); ``restored``: the page-load event that
    restores the session (``restore_session``), after which the board is read; the table is also re-read on every
    page load."""
    gr.Markdown("### Class board")
    if notice:
        gr.Markdown(as_markdown(notice), elem_classes="small-note")
    gr.Markdown(BOARD_NOTE.format(images=board.score_images, per_class=board.fidelity_per_class),
                elem_classes="small-note")
    table = gr.HTML(board_html(board.entries()), elem_id="board-table")  # then refreshed on every page load
    with gr.Row():
        refresh = gr.Button("Refresh the board", size="sm")
        timer = gr.Timer(REFRESH_SECONDS, active=False)
    with gr.Row():
        shown = gr.Dropdown(label="Samples of", choices=[], value=None, interactive=True)
        sheet = gr.Image(label="Samples (T = 1, seed 0)", type="pil", interactive=False, elem_classes="pixelated")
    with gr.Accordion("Publish a model", open=False):
        name = gr.Textbox(label=f"Display name (shown to the class; at most {NAME_CHARS} characters)",
                          max_length=NAME_CHARS, max_lines=1)
        with gr.Row():
            publish_last = gr.Button("Publish my last trained model", variant="primary")
        upload = CheckpointUpload(label="…or a checkpoint file (.safetensors)", file_types=[".safetensors"], type="filepath")
        publish_upload = gr.Button("Publish this file")
        mine = gr.Dropdown(label="My entries", choices=[], value=None, interactive=True)
        delete_mine = gr.Button("Delete my entry", variant="stop", size="sm")
        message = gr.Markdown()
    with gr.Accordion("Teacher", open=False):
        if board.has_teacher:
            key = gr.Textbox(label="Teacher key", type="password", max_lines=1)
            picked = gr.Dropdown(label="Entry", choices=[], value=None, interactive=True)
            with gr.Row():
                hide = gr.Button("Hide", size="sm")
                show = gr.Button("Show again", size="sm")
                delete_any = gr.Button("Delete", variant="stop", size="sm")
            with gr.Row():
                freeze = gr.Button("Freeze the board", size="sm")
                thaw = gr.Button("Unfreeze", size="sm")
            sure = gr.Checkbox(label="Yes, delete every entry", value=False)
            clear = gr.Button("Clear the board", variant="stop", size="sm")
            teacher_message = gr.Markdown()
        else:
            key = gr.Textbox(visible=False)
            gr.Markdown("No teacher key is set on this server: start it with PIXELAR_TEACHER_KEY set to hide or "
                        "delete others' entries, clear or freeze the board.", elem_classes="small-note")

    def views(workspace, teacher_key=None):
        """The table and every picker of entries, as this session (and, with the key, the teacher) sees them."""
        token, teacher = _token(workspace), board.is_teacher(teacher_key)
        entries = board.entries(include_hidden=teacher)
        scoring = any(e.state == "scoring" and e.owned_by(token) for e in entries)
        frozen = "<p><b>The board is frozen by the teacher.</b></p>" if board.frozen else ""
        ready = [(f"#{e.id} {e.name}", e.id) for e in entries if e.sheet and (teacher or not e.hidden)]
        return [frozen + board_html(entries, token, teacher), gr.Timer(active=scoring),
                gr.Dropdown(choices=ready), gr.Dropdown(choices=entry_choices(entries, token, mine_only=True))]

    view_outputs = [table, timer, shown, mine]

    def on_refresh(workspace, teacher_key):
        return views(workspace, teacher_key)

    gr.on([refresh.click, timer.tick, *open_triggers], on_refresh, inputs=[session, key], outputs=view_outputs,
          api_visibility="private", queue=False, show_progress="hidden")
    if restored is not None:
        restored.then(on_refresh, inputs=[session, key], outputs=view_outputs, api_visibility="private", queue=False,
                      show_progress="hidden")

    @friendly
    def on_show(entry_id, teacher_key):
        entry = board.entry(entry_id)
        if entry is None or not entry.sheet or (entry.hidden and not board.is_teacher(teacher_key)):
            return None
        with Image.open(board.sheet_path(entry.id)) as picture:
            return picture.copy()

    shown.change(on_show, inputs=[shown, key], outputs=sheet, api_visibility="private")

    def published(entry: Entry, workspace):
        text = (f"Published **{as_markdown(entry.name)}** as entry #{entry.id}. The server is scoring it now "
                "(“scoring…” on the board until it is done).")
        return [workspace, text, *views(workspace)]

    @friendly
    def on_publish_last(display_name, workspace):
        if workspace is None or not workspace.models:
            raise BoardError("You have not trained a model in this session yet: train one above, then publish it.")
        model = list(workspace.models.values())[-1]
        return published(board.publish_model(model, display_name, workspace.token), workspace)

    @friendly
    def on_publish_upload(display_name, path, workspace):
        if not path:
            raise BoardError("Choose a .safetensors file first.")
        workspace = workspace or Workspace()
        return published(board.publish_file(path, display_name, workspace.token), workspace)

    publish_outputs = [session, message, *view_outputs]
    publish_last.click(on_publish_last, inputs=[name, session], outputs=publish_outputs, api_visibility="private",
                       concurrency_id="board", concurrency_limit=2)
    publish_upload.click(on_publish_upload, inputs=[name, upload, session], outputs=publish_outputs,
                         api_visibility="private", concurrency_id="board", concurrency_limit=2)

    @friendly
    def on_delete_mine(entry_id, workspace):
        if entry_id is None:
            raise BoardError("Choose one of your entries first.")
        entry = board.delete(entry_id, token=_token(workspace))
        return [f"Deleted your entry #{entry.id} **{as_markdown(entry.name)}**.", *views(workspace)]

    delete_mine.click(on_delete_mine, inputs=[mine, session], outputs=[message, *view_outputs],
                      api_visibility="private")

    if board.has_teacher:
        def teacher_action(act):
            @friendly
            def handler(teacher_key, entry_id, confirmed, workspace):
                text = act(teacher_key, entry_id, confirmed)
                return [text, *views(workspace, teacher_key),
                        gr.Dropdown(choices=entry_choices(board.entries(include_hidden=True), teacher=True))]
            return handler

        def need(entry_id):
            if entry_id is None:
                raise BoardError("Choose an entry first.")
            return entry_id

        def do_hide(k, i, _):
            return f"Entry #{board.hide(need(i), k).id} is hidden."

        def do_show(k, i, _):
            return f"Entry #{board.hide(need(i), k, hidden=False).id} is shown again."

        def do_delete(k, i, _):
            return f"Deleted entry #{board.delete(need(i), teacher_key=k).id}."

        def do_freeze(k, i, _):
            board.freeze(k)
            return "The board is frozen: no new entries, and students cannot delete theirs."

        def do_thaw(k, i, _):
            board.freeze(k, frozen=False)
            return "The board takes entries again."

        def do_clear(k, i, confirmed):
            if not confirmed:
                board.check_teacher(k)  # a wrong key is told so first
                raise BoardError("Tick “Yes, delete every entry” to clear the board.")
            return f"Cleared the board: {board.clear(k)} entries deleted."

        outputs = [teacher_message, *view_outputs, picked]
        for button, act in ((hide, do_hide), (show, do_show), (delete_any, do_delete), (freeze, do_freeze),
                            (thaw, do_thaw), (clear, do_clear)):
            button.click(teacher_action(act), inputs=[key, picked, sure, session], outputs=outputs,
                         api_visibility="private")

        def on_key(teacher_key, workspace):
            teacher = board.is_teacher(teacher_key)
            choices = entry_choices(board.entries(include_hidden=True), teacher=True) if teacher else []
            return [*views(workspace, teacher_key), gr.Dropdown(choices=choices, value=None)]

        key.submit(on_key, inputs=[key, session], outputs=[*view_outputs, picked], api_visibility="private",
                   queue=False)

    return BoardSection(table, refresh, key, timer)
