"""The class board (demo/board.py, demo/board_tab.py): publishing, scoring by the server on real mnist-5k images,
a restart, kills while publishing, hostile uploads, names shown as text, concurrent publishes, the teacher's key."""
from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import gradio as gr
import pytest

import pixelar
from app_fixtures import write_bad_checkpoints
from demo.board import Board, BoardError, display_name, resolve_data_dir
from demo.board_tab import board_html, build_board_section, entry_choices
from demo.models import Shelf, Workspace

ROOT = Path(__file__).resolve().parents[1]
KEY = "correct horse battery staple"
FEW = {"score_images": 6, "fidelity_per_class": 1, "sheet_samples": 4}  # the app uses 500, 10 and 20


def make_board(folder: Path, **overrides) -> Board:
    return Board(folder, **{"classifiers": ROOT / "checkpoints", "teacher_key": "", **FEW, **overrides})


def consistent(board: Board) -> None:
    """Every row has its file and every file its row; no temp files; the database is sound."""
    ids = {e.id for e in board.entries(include_hidden=True)}
    files = {p.name for p in board.models_dir.iterdir()}
    assert files == {f"{i}.safetensors" for i in ids}
    assert all(p.stem.isdigit() and int(p.stem) in ids for p in board.sheets_dir.iterdir())
    with sqlite3.connect(board.db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_publish_score_list_and_restart(tiny_checkpoints, tmp_path):
    board = make_board(tmp_path / "data")
    v3 = board.publish_file(tiny_checkpoints / "v3.safetensors", "Ada's V3", "session-a")
    v1 = board.publish_file(tiny_checkpoints / "v1.safetensors", "Bo's V1", "session-b")
    assert v3.status == "scoring" and v3.nll is None
    assert board.wait_scored(120)
    entries = {e.id: e for e in board.entries()}
    dataset = pixelar.load_dataset("mnist-5k")
    for entry, kind in ((entries[v3.id], "v3"), (entries[v1.id], "v1")):
        model = pixelar.load_checkpoint(tiny_checkpoints / f"{kind}.safetensors")
        assert entry.status == "ready" and entry.kind == kind and entry.k == 16 and entry.context == 28
        assert entry.nll == pytest.approx(pixelar.evaluate(model, dataset, max_images=6), abs=1e-4)
        assert entry.nll_images == 6 and entry.parameters == pixelar.count_parameters(model)
        assert entry.steps == 20 and entry.samples_seen == 20 * 256 and entry.dataset == "mnist-5k"
        assert board.sheet_path(entry.id).is_file() and entry.sheet
    assert entries[v3.id].fidelity is not None and entries[v3.id].fidelity_per_class == 1
    assert entries[v1.id].fidelity is None  # V1 ignores the class
    assert [e.id for e in board.entries()] == sorted(entries, key=lambda i: entries[i].nll)  # best NLL first
    consistent(board)

    # the other tabs' pickers offer the ready entries, shared and read-only
    shelf = Shelf(tiny_checkpoints, extra=board)
    labels = dict((name, label) for label, name in shelf.choices(None))
    assert labels[v3.key].startswith("board · Ada's V3 (#")
    assert shelf.get(v3.key, None) is board.model(v3.key)
    assert shelf.title(v3.key) == f"Ada's V3 (board #{v3.id})" and shelf.title("v3") == "v3"  # what captions call them
    with pytest.raises(ValueError, match="unknown model"):
        shelf.get("board-999", None)
    with pytest.raises(KeyError):
        board.title("board-999")

    again = make_board(tmp_path / "data")  # a restart
    assert again.entries() == board.entries()
    assert again.sweep() == {"temp files": 0, "files without an entry": 0, "entries without a file": 0}


def test_publish_my_last_trained_model(tiny_checkpoints, tmp_path):
    board = make_board(tmp_path / "data", start=False)
    workspace = Workspace()
    model = pixelar.load_checkpoint(tiny_checkpoints / "v4.safetensors")
    before = dict(model.metadata)
    workspace.add(model)
    entry = board.publish_model(list(workspace.models.values())[-1], "my V4", workspace.token)
    assert model.metadata == before
    assert entry.status == "scoring" and entry.kind == "v4" and entry.context == 784 and entry.conditional
    assert pixelar.load_checkpoint(board.models_dir / f"{entry.id}.safetensors").metadata == before
    assert entry.owned_by(workspace.token) and not entry.owned_by(Workspace().token)


KILLED_PUBLISHER = textwrap.dedent("""
    import itertools, os, sys
    sys.path.insert(0, {root!r})
    from demo import board as b
    point = sys.argv[2]
    if point == "copy":  # half a file copied
        def copy(source, target, limit):
            open(target, "wb").write(open(source, "rb").read()[:5000]); os._exit(9)
        b._copy_capped = copy
    elif point == "insert":  # the row inserted, the file not yet renamed
        b.os.replace = lambda *a: os._exit(9)
    elif point == "rename":  # the file renamed, the transaction not yet committed
        b._fsync_folder = lambda folder: os._exit(9)
    board = b.Board(sys.argv[1], start=False, teacher_key="", per_session=100_000, max_entries=100_000)
    if point in ("random", "delete"):  # warm up (the first publish loads more code), so that kills land in publishes
        board.delete(board.publish_file({source!r}, "warm-up", "warm-up").id, token="warm-up")
    print("ready", flush=True)
    for i in itertools.count():  # until killed
        board.publish_file({source!r}, f"entry {{i}}", f"session {{i}}")
        if point == "delete":
            board.delete(board.entries()[-1].id, token=f"session {{i}}")
    """)


@pytest.mark.slow
def test_a_kill_while_publishing_leaves_a_consistent_board(tiny_checkpoints, tmp_path):
    folder = tmp_path / "data"
    board = make_board(folder, start=False, per_session=100_000, max_entries=100_000)
    board.publish_file(tiny_checkpoints / "v1.safetensors", "kept", "teacher's")
    script = tmp_path / "publisher.py"
    script.write_text(KILLED_PUBLISHER.format(root=str(ROOT), source=str(tiny_checkpoints / "v1.safetensors")))
    rng = random.Random(0)
    points = ["copy", "insert", "rename", "random", "random", "random", "delete"]
    for point in points:
        process = subprocess.Popen([sys.executable, str(script), str(folder), point], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
        if point in ("random", "delete"):
            time.sleep(rng.uniform(0.05, 0.6))
            process.kill()
        process.wait(60)
        assert process.returncode != 0
        if point in ("copy", "insert", "rename"):
            assert process.returncode == 9, process.stderr.read()
        after = make_board(folder, start=False, per_session=100_000, max_entries=100_000)  # the startup sweep
        consistent(after)
        assert "kept" in [e.name for e in after.entries()]
        assert all(after.entry(e.id) for e in after.entries())
    if sum(point == "random" for point in points):
        assert len(after.entries()) > 1  # the random kills let some publishes finish


def test_hostile_uploads_are_refused_and_change_nothing(tiny_checkpoints, tmp_path):
    board = make_board(tmp_path / "data", start=False, max_file_bytes=200_000)
    board.publish_file(tiny_checkpoints / "v1.safetensors", "kept", "s")
    before = board.entries()
    bad = tmp_path / "bad"
    bad.mkdir()
    names = write_bad_checkpoints(bad)
    raw = (tiny_checkpoints / "v3.safetensors").read_bytes()
    (bad / "truncated.safetensors").write_bytes(raw[: len(raw) // 2])
    (bad / "flipped.safetensors").write_bytes(raw[:-100] + bytes(b ^ 0xFF for b in raw[-100:]))
    (bad / "text.safetensors").write_text("<script>alert(1)</script>")
    (bad / "empty.safetensors").write_bytes(b"")
    (bad / "huge.safetensors").write_bytes(b"\0" * 300_000)  # over the cap: refused before reading
    pixelar.save_checkpoint(pixelar.build_model("v1", hidden=8), bad / "no-dataset.safetensors")
    shutil.copy(ROOT / "checkpoints" / "classifier-mnist-5k.safetensors", bad / "classifier.safetensors")
    files = [*names, "truncated.safetensors", "flipped.safetensors", "text.safetensors", "empty.safetensors",
             "huge.safetensors", "no-dataset.safetensors", "classifier.safetensors"]
    for name in files:
        with pytest.raises(BoardError) as refused:
            board.publish_file(bad / name, "bad", "s")
        message = str(refused.value)
        assert str(bad) not in message and str(board.folder) not in message  # no server paths on the page
        assert board.entries() == before
        consistent(board)
    with pytest.raises(BoardError, match="at most"):
        board.publish_file(bad / "huge.safetensors", "bad", "s")
    with pytest.raises(BoardError, match="could not be read"):
        board.publish_file(bad / "missing.safetensors", "bad", "s")


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "[click me](https://evil.example)", "a\x00b\u202ec\x1b[31m",
                                  "**bold** & <img src=x onerror=alert(1)>"])
def test_names_show_as_text(tiny_checkpoints, tmp_path, name):
    board = make_board(tmp_path / "data", start=False)
    entry = board.publish_file(tiny_checkpoints / "v1.safetensors", name, "s")
    assert "\x00" not in entry.name and "\u202e" not in entry.name and "\x1b" not in entry.name
    page = board_html(board.entries(), "s")
    assert "<script" not in page and "<img" not in page and "<a " not in page
    assert "(yours)" in page
    label, _ = entry_choices(board.entries(), "s", mine_only=True)[0]
    assert entry.name in label


def test_display_names_are_checked():
    assert display_name("  Ada \n  Lovelace ") == "Ada Lovelace"
    for bad in ("", "   ", "\x00\x01", None, 42):
        with pytest.raises(BoardError, match="name"):
            display_name(bad)
    with pytest.raises(BoardError, match="at most 40"):
        display_name("x" * 41)


def test_concurrent_publishes_all_land(tiny_checkpoints, tmp_path):
    board = make_board(tmp_path / "data", start=False)
    errors = []

    def publish(i):
        try:
            board.publish_file(tiny_checkpoints / "v1.safetensors", f"thread {i}", f"session {i}")
        except Exception as error:  # noqa: BLE001  (collected for the assertion)
            errors.append(error)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(e.name for e in board.entries()) == sorted(f"thread {i}" for i in range(8))
    consistent(board)


def test_limits_per_session_and_board(tiny_checkpoints, tmp_path):
    board = make_board(tmp_path / "data", start=False, per_session=2, max_entries=3)
    source = tiny_checkpoints / "v1.safetensors"
    board.publish_file(source, "one", "a")
    board.publish_file(source, "two", "a")
    with pytest.raises(BoardError, match="at most 2 each"):
        board.publish_file(source, "three", "a")
    board.publish_file(source, "three", "b")
    with pytest.raises(BoardError, match="board is full"):
        board.publish_file(source, "four", "c")
    with pytest.raises(BoardError, match="session"):
        board.publish_file(source, "no session", "")
    consistent(board)


def test_students_delete_only_their_own(tiny_checkpoints, tmp_path):
    board = make_board(tmp_path / "data", start=False)  # no teacher key set
    source = tiny_checkpoints / "v1.safetensors"
    mine, theirs = board.publish_file(source, "mine", "me"), board.publish_file(source, "theirs", "them")
    with pytest.raises(BoardError, match="only your own"):
        board.delete(theirs.id, token="me")
    with pytest.raises(BoardError, match="No teacher key"):
        board.delete(theirs.id, teacher_key="anything")
    with pytest.raises(BoardError, match="No teacher key"):
        board.clear("")
    board.delete(mine.id, token="me")
    assert [e.name for e in board.entries()] == ["theirs"]
    consistent(board)


def test_the_teacher_key(tiny_checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELAR_TEACHER_KEY", KEY)
    board = Board(tmp_path / "data", start=False, **FEW)
    source = tiny_checkpoints / "v1.safetensors"
    a, b = board.publish_file(source, "a", "s1"), board.publish_file(source, "b", "s2")
    for wrong in ("", "wrong", KEY + " ", KEY.upper(), None):
        for act in (lambda: board.hide(a.id, wrong), lambda: board.clear(wrong), lambda: board.freeze(wrong),
                    lambda: board.delete(a.id, token="s2", teacher_key=wrong)):
            with pytest.raises(BoardError):
                act()
    assert len(board.entries()) == 2 and not board.frozen
    board.hide(a.id, KEY)
    assert [e.name for e in board.entries()] == ["b"] and board.entry(a.id).status == "hidden"
    assert "board-" + str(a.id) not in board.labels()
    board.hide(a.id, KEY, hidden=False)
    board.freeze(KEY)
    with pytest.raises(BoardError, match="frozen"):
        board.publish_file(source, "c", "s3")
    with pytest.raises(BoardError, match="frozen"):
        board.delete(b.id, token="s2")
    assert Board(tmp_path / "data", start=False, **FEW).frozen  # survives a restart
    board.delete(b.id, teacher_key=KEY)
    board.freeze(KEY, frozen=False)
    board.publish_file(source, "c", "s3")
    assert board.clear(KEY) == 2 and board.entries() == []
    consistent(board)


def test_the_section_builds_and_never_sends_the_key(tiny_checkpoints, tmp_path):
    board = make_board(tmp_path / "data", start=False, teacher_key=KEY)
    board.publish_file(tiny_checkpoints / "v1.safetensors", "<b>x</b>", "s")
    with gr.Blocks() as page:
        session = gr.State(None)
        section = build_board_section(board, session, notice="temporary <folder>")
    config = json.dumps(page.get_config_file(), default=str)
    assert KEY not in config and section.table is not None
    assert "&lt;b&gt;x&lt;/b&gt;" in board_html(board.entries())


def test_data_folder_choice(tmp_path, monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert resolve_data_dir(None, tmp_path) == (tmp_path / "pixelar-data", None)
    assert resolve_data_dir(tmp_path / "given", tmp_path) == (tmp_path / "given", None)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    folder, notice = resolve_data_dir(blocked / "sub", tmp_path)
    assert folder.is_dir() and "will not survive a restart" in notice
    monkeypatch.setenv("SPACE_ID", "someone/pixelar")
    if not os.access("/data", os.W_OK):
        folder, notice = resolve_data_dir(None, tmp_path)
        assert "will not survive a restart" in notice


def handlers(page: gr.Blocks) -> dict:
    """The page's event functions by name (the first of each name)."""
    found = {}
    for block_fn in page.fns.values():
        found.setdefault(block_fn.name, block_fn.fn)
    return found


def test_the_sections_handlers(tiny_checkpoints, tmp_path):
    board = make_board(tmp_path / "data", start=False, teacher_key=KEY)
    with gr.Blocks() as page:
        session = gr.State(None)
        build_board_section(board, session)
    fn = handlers(page)
    workspace, text, table, *_ = fn["on_publish_upload"]("<i>[me](http://x)</i>", str(tiny_checkpoints / "v1.safetensors"), None)
    assert isinstance(workspace, Workspace) and "<i>" not in text and "](" not in text
    assert "(yours)" in table and "<i>" not in table and "scoring…" in table
    with pytest.raises(gr.Error, match="not trained a model"):
        fn["on_publish_last"]("name", None)
    with pytest.raises(gr.Error, match="not a checkpoint"):
        fn["on_publish_upload"]("x", str(ROOT / "checkpoints" / "classifier-mnist-5k.safetensors"), workspace)
    hide = fn["handler"]  # the teacher's first button: hide
    entry_id = board.entries()[0].id
    with pytest.raises(gr.Error, match="not the teacher"):
        hide("wrong", entry_id, False, workspace)
    text, table, *_ = hide(KEY, entry_id, False, workspace)
    assert "hidden" in text and board.entry(entry_id).hidden
    with pytest.raises(gr.Error, match="only your own"):
        fn["on_delete_mine"](entry_id, Workspace())
    text, *_ = fn["on_delete_mine"](entry_id, workspace)
    assert "Deleted" in text and board.entries(include_hidden=True) == []


def test_the_app_puts_the_board_in_the_train_tab(tiny_checkpoints, tmp_path):
    from app import build_app

    page = build_app(tiny_checkpoints, tmp_path / "data-root", data_dir=tmp_path / "board")
    config = page.get_config_file()
    components = {c["id"]: c for c in config["components"]}

    def find(node, inside):
        here = components[node["id"]]
        if here.get("props", {}).get("elem_id") == "board-table":
            return inside
        for child in node.get("children", []):
            found = find(child, here.get("props", {}).get("label") if here["type"] == "tabitem" else inside)
            if found is not None:
                return found
        return None

    assert any(find(child, None) == "Train" for child in config["layout"]["children"])
    assert (tmp_path / "board" / "board.sqlite3").is_file()


def test_scoring_waits_for_sampling_requests(tiny_checkpoints, tmp_path):
    idle = threading.Event()  # cleared: a sampling run is computing
    board = make_board(tmp_path / "data", yield_to=idle)
    entry = board.publish_file(tiny_checkpoints / "v3.safetensors", "waits", "s")
    time.sleep(1.0)
    assert board.entry(entry.id).status == "scoring"  # still at its first piece of work
    idle.set()
    assert board.wait_scored(120) and board.entry(entry.id).status == "ready"


def test_an_entry_that_cannot_be_scored_says_why(tiny_checkpoints, tmp_path):
    def unavailable(name):
        raise pixelar.DataUnavailable(f"data set {name!r} cannot be downloaded here")

    board = make_board(tmp_path / "data", datasets=unavailable)
    entry = board.publish_file(tiny_checkpoints / "v1.safetensors", "orphan", "s")
    assert board.wait_scored(60)
    failed = board.entry(entry.id)
    assert failed.status == "failed" and "cannot be downloaded" in failed.error
    assert "failed: data set" in board_html(board.entries())
    with pytest.raises(KeyError):
        board.model(entry.key)


def test_a_browser_keeps_its_token_and_a_forged_one_is_replaced(tmp_path):
    from demo.board_tab import restore_session

    kept = Workspace().token
    workspace, token = restore_session(kept, None)
    assert workspace.token == token == kept  # a reload: the same entries are this session's
    for forged in (None, "", "x" * 33, "<script>", 7, ["a"], kept[:-1] + "!"):
        workspace, token = restore_session(forged, None)
        assert token == workspace.token != forged and len(token) == 32
    assert restore_session("y" * 32, workspace)[1] == workspace.token  # a session already open keeps its own
    assert make_board(tmp_path / "a").browser_secret == make_board(tmp_path / "a", start=False).browser_secret  # a restart
    assert oct((tmp_path / "a" / "browser-secret").stat().st_mode)[-3:] == "600"
