"""pixelar's teaching app: ``python app.py`` serves Generate, Step through, Explore, Draw and Train on http://localhost:7860.

Options: ``--port`` (or GRADIO_SERVER_PORT), ``--host`` (or GRADIO_SERVER_NAME; 0.0.0.0 to serve a network),
``--checkpoints`` (or PIXELAR_CHECKPOINTS; the folder of pretrained ``*.safetensors``), ``--data-root``,
``--max-train-minutes`` (or PIXELAR_MAX_TRAIN_MINUTES; 0: no cap), ``--data-dir`` (or PIXELAR_DATA_DIR; the class
board's folder, kept across restarts).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

# One compute thread per request. The app serves several users and a training run at once on a few cores;
# threads of concurrent requests then fight over the cores, and torch's waiting threads spin. Measured on
# 2 cores with two other busy processes: 16 V3 samples took 6.4 s with 2 threads and 1.6 s with 1 (with one
# other busy process, 2.2 s vs 0.75 s). Set before torch is first imported; OMP_NUM_THREADS=2 python app.py overrides.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gradio as gr
import torch

from demo.board import Board, default_datasets, resolve_data_dir
from demo.board_tab import build_board_section, remembered_token, restore_session
from demo.common import refresh_picker
from demo.data import DataSets
from demo.draw_tab import build_draw_tab
from demo.explore_tab import build_explore_tab
from demo.generate_tab import build_generate_tab
from demo.lesson import step_href
from demo.links import LINK_JS, share_button, share_panel, wire_links
from demo.models import Shelf, close_workspace, remove_session_folders
from demo.services import Services
from demo.step_tab import build_step_tab
from demo.train_tab import build_train_tab
from demo.training import DEFAULT_MAX_TRAIN_MINUTES, TrainingSlot
from pixelar.checkpoints import MAX_HEADER_BYTES, MAX_PARAMETERS
from pixelar.cli import whole

HERE = Path(__file__).resolve().parent
# An upload larger than the largest checkpoint the app accepts (50M float32 weights and a 1 MB header) is refused.
MAX_UPLOAD_BYTES = MAX_PARAMETERS * 4 + MAX_HEADER_BYTES + 8
HEADER = ("**pixelar**: small models draw digits one pixel at a time, each of 16 grey levels "
          "(after *Generating Pixels One by One*).")
CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; }
#app-header { margin: 0 0 -6px 0; }
#app-top { align-items: center; flex-wrap: nowrap; }
#share-panel { max-width: 520px; }
/* the lesson: a bar in the header's place (so the tabs stay put), large enough for the back row; Back and Next are
   links styled as buttons, first, so they stay in one place on every step; the title and its text run on as one text */
#lesson { flex: 1 1 0; min-width: 0; }
#lesson .html-container { padding: 0; }
#app-top:has(#lesson .lesson-bar) :is(#app-header, #lesson-start) { display: none; }
.lesson-bar a { display: inline-block; padding: 2px 12px; border-radius: 6px; font-size: 16px;
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); text-decoration: none;
  white-space: nowrap; }
.lesson-bar { display: flex; align-items: baseline; gap: 12px; padding: 3px 10px; font-size: 17px; line-height: 1.35;
  border-left: 5px solid var(--color-accent); background: var(--background-fill-secondary); }
.lesson-moves { display: flex; gap: 8px; flex: none; }
.lesson-where { color: var(--body-text-color-subdued); font-size: 16px; white-space: nowrap; }
.lesson-title { margin-right: 6px; }
.lesson-bar a.lesson-next { background: var(--button-primary-background-fill); color: var(--button-primary-text-color); }
#share-qr svg { width: min(420px, 80vw); height: auto; }
/* a long model name ends in an ellipsis before the picker's arrow, not under it (the open list shows it whole) */
.model-picker input[role=combobox] { text-overflow: ellipsis; padding-right: 28px; }
#share-qr code { word-break: break-all; font-size: 14px; }
#app-header p { font-size: 16px; margin: 0; }
/* skipped checkpoint files: one line (the server log has the details), not a block that pushes the tabs down;
   none: no block at all (not even the gap around an empty one) */
#shelf-notice:not(:has(p)) { display: none; }
#shelf-notice p { font-size: 14px; margin: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  color: var(--color-accent); }
/* ... and none in a lesson, whose bar has the header's place: the class does not need it (the teacher saw it before) */
body:has(#lesson .lesson-bar) #shelf-notice { display: none; }
.small-note, .small-note p { font-size: 15px; color: var(--body-text-color-subdued); }
/* Gradio's label badge and its buttons (fullscreen, download) sit in a strip above a picture, never on it: the label
   takes its own line, the buttons go to the block's top right (beside the label, or on a strip of their own) */
.block.picture > label.float:not(.hide) { position: static; max-width: calc(100% - 90px); }
.block.picture .image-container { position: static; }
.block.picture:not(:has(> label.float:not(.hide))) .image-container { padding-top: 28px; }
/* Present in Generate: the result column alone fills the screen, its pictures as tall as it allows (no buttons) */
#generate-result.presenting { position: fixed; inset: 0; z-index: 1000; margin: 0; padding: 10px 16px; overflow: auto;
  display: flex !important; flex-direction: column !important; flex-wrap: nowrap !important;
  background: var(--background-fill-primary); }
#generate-result.presenting .result img { max-height: calc(100vh - 112px); }
#generate-result.presenting .block.picture .image-container { padding-top: 0; }
#generate-result.presenting .icon-button-wrapper { display: none; }
#generate-result.presenting #generate-caption p { font-size: 18px; margin: 0; }
.result-top { align-items: flex-start; flex-wrap: nowrap !important; }
/* a tab's controls a little closer together than Gradio's 16 px: with the lesson bar, or a model's note under Digit,
   they still end above a projector's 720 px */
.controls { gap: 10px !important; }
/* a result fits the projector's screen beside its controls (and above it, the strip of buttons) */
.result img { max-height: calc(100vh - 265px); object-fit: contain; }
/* the Draw tab: its readings, surprise maps and completion on one projector screen */
#draw-table table { margin: 0; }
#draw-table th, #draw-table td { padding: 3px 8px !important; font-size: 15px; line-height: 1.3; }
#draw-surprise img, #draw-completion img { max-height: 150px; }
/* the class board: a compact table (it scrolls sideways on a phone) */
#board-table th, #board-table td { padding: 3px 8px !important; font-size: 15px; line-height: 1.3; }
/* a model that ignores the class: its picker looks switched off */
.class-picker:has(input:disabled) .wrap label { opacity: 0.4; text-decoration: line-through; }
/* phones: every tab's name on screen (no "..." menu) */
@media (max-width: 720px) {
  .tab-wrapper .tab-container, .tab-container { flex-wrap: wrap !important; height: auto !important; overflow: visible !important; }
  .tab-container button { padding: 4px 6px !important; font-size: 15px !important; }  /* five tabs fit in 390 px */
  #shelf-notice p { white-space: normal; }
  #app-top { flex-wrap: wrap !important; }  /* the header on its own line, the lesson and share buttons under it */
  #app-header, #lesson { min-width: 100% !important; }
  .lesson-bar { flex-wrap: wrap; gap: 2px 10px; }
  #generate-present { display: none; }  /* a phone is not a projector */
}
"""

# Phones: a result lands far below the button that asked for it, so the page scrolls to it when it arrives (a picture
# in a .result box, or the step player's new trace: demo/player.js scrolls to itself).
PHONE_JS = """
() => {
  let last = 0;
  new MutationObserver((records) => {
    if (window.innerWidth > 720 || Date.now() - last < 1000) return;
    for (const record of records) {
      const box = record.target.closest && record.target.closest('.result');
      const picture = box && box.querySelector('img');
      if (!picture || picture.getBoundingClientRect().top < window.innerHeight * 0.6) continue;
      last = Date.now();  // once its caption, above it, has come too
      setTimeout(() => picture.scrollIntoView({behavior: 'smooth', block: 'start'}), 300);
      return;
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}
"""
PAGE_JS = f"() => {{ ({LINK_JS.strip()})(); ({PHONE_JS.strip()})(); }}"


def build_app(checkpoints: str | Path, data_root: str | Path = "data",
              max_train_minutes: float | None = DEFAULT_MAX_TRAIN_MINUTES, data_dir: str | Path | None = None) -> gr.Blocks:
    """The whole app: one tab per ``demo`` module, sharing a per-session workspace, the checkpoint shelf and the
    app's services (its one request batcher and registry of "where it looked" ids, built here).
    ``max_train_minutes``: the cap on one training run (None: none). ``data_dir``: the class board's folder
    (None: ``pixelar-data/`` beside the app, or ``/data`` on a Space with persistent storage)."""
    services = Services()
    board_folder, board_notice = resolve_data_dir(data_dir, HERE)
    board = Board(board_folder, classifiers=checkpoints, datasets=default_datasets(data_root),
                  yield_to=services.batcher.idle)
    shelf, data_sets = Shelf(checkpoints, extra=board), DataSets(data_root)
    with gr.Blocks(title="pixelar: generating pixels one by one", delete_cache=(3600, 3600)) as app:
        session = gr.State(None, delete_callback=close_workspace)
        with gr.Row(elem_id="app-top"):  # in a lesson, its bar takes the header's place: the tabs stay where they are
            lesson = gr.HTML(visible=False, elem_id="lesson", padding=False)
            gr.Markdown(HEADER, elem_id="app-header")
            gr.Button("Start the lesson", link=step_href(1), link_target="_self", size="sm", elem_id="lesson-start",
                      min_width=120, scale=0)
            button = share_button()
        share = (button, *share_panel())  # under the header, when opened
        notice = gr.Markdown(elem_id="shelf-notice")
        with gr.Tabs() as tab_row:
            tabs = [
                build_generate_tab(shelf, session, services),
                build_step_tab(shelf, session, services),
                build_explore_tab(shelf, data_sets, session, services),
                build_draw_tab(shelf, data_sets, session, services),
                build_train_tab(data_sets, session, TrainingSlot(max_train_minutes), services.batcher),
            ]
        kept = remembered_token(board)
        restored = app.load(restore_session, inputs=[kept, session], outputs=[session, kept], api_visibility="private",
                            queue=False)  # first: every later load event sees the session
        with tabs[-1].tab, gr.Column(elem_id="class-board"):  # the class board, at the bottom of the Train tab
            build_board_section(board, session, board_notice, open_triggers=[tabs[-1].tab.select], restored=restored)
        pickers = [picker for tab in tabs for picker in tab.pickers]

        def refresh(workspace, *current):
            return [refresh_picker(shelf, value, workspace) for value in current]

        refresh_options = {"inputs": [session, *pickers], "outputs": pickers, "api_visibility": "private", "queue": False}
        gr.on([tab.tab.select for tab in tabs], refresh, **refresh_options)
        filled = restored.then(refresh, **refresh_options)
        wire_links(tab_row, tabs, session, after=filled, share=share, lesson=lesson)  # the page's link opens once pickers are filled
        app.load(shelf.notice, outputs=notice, api_visibility="private", queue=False)  # files skipped, if any
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="pixelar's teaching app (Gradio).")
    env = os.environ.get
    parser.add_argument("--port", type=whole("port", 1, 65535), default=env("GRADIO_SERVER_PORT", "7860"),
                        help="port (default: GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default: GRADIO_SERVER_NAME or 127.0.0.1; 0.0.0.0 for a network)")
    parser.add_argument("--checkpoints", default=env("PIXELAR_CHECKPOINTS", str(HERE / "checkpoints")),
                        help="folder of pretrained *.safetensors (default: PIXELAR_CHECKPOINTS or checkpoints/)")
    parser.add_argument("--data-root", default=env("PIXELAR_DATA", str(HERE / "data")),
                        help="where data sets are downloaded (default: PIXELAR_DATA or data/)")
    parser.add_argument("--max-train-minutes", type=float,
                        default=float(env("PIXELAR_MAX_TRAIN_MINUTES", DEFAULT_MAX_TRAIN_MINUTES)),
                        help="stop a training run after this many minutes, keeping what it trained; 0: no cap "
                             f"(default: PIXELAR_MAX_TRAIN_MINUTES or {DEFAULT_MAX_TRAIN_MINUTES:g})")
    parser.add_argument("--data-dir", default=env("PIXELAR_DATA_DIR"),
                        help="the class board's folder (default: PIXELAR_DATA_DIR, else /data/pixelar-data on a Space "
                             "with persistent storage, else pixelar-data/ beside app.py)")
    args = parser.parse_args()
    if not args.max_train_minutes >= 0:  # NaN too
        parser.error(f"--max-train-minutes must be 0 (no cap) or more, got {args.max_train_minutes:g}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Once, for the whole process, before any thread computes: every thread started later (Gradio's handlers, the
    # batcher's worker, a training run) starts with this many compute threads (OMP_NUM_THREADS, 1 unless set).
    torch.set_num_threads(torch.get_num_threads())
    app = build_app(args.checkpoints, args.data_root, args.max_train_minutes or None, args.data_dir)
    app.queue(default_concurrency_limit=2)
    # Sampling handlers mostly wait for the batcher (demo/serving.py): enough threads that a class's requests can
    # all be waiting, and so merged, at once.
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a stop from outside shuts down as Ctrl-C does
    try:
        app.launch(server_name=args.host, server_port=args.port, css=CSS, js=PAGE_JS, theme=gr.themes.Default(text_size="lg"),
                   show_error=False, max_threads=100, max_file_size=MAX_UPLOAD_BYTES)
    finally:
        remove_session_folders()


if __name__ == "__main__":
    main()
