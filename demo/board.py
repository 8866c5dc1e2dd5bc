"""The class board: models that students publish, scored by the server, kept across restarts.

Storage is one data folder: ``board.sqlite3`` (SQLite in WAL mode: one row per entry, plus the board's settings)
and ``models/<id>.safetensors`` and ``sheets/<id>.png`` beside it. Publishing never leaves half an entry:

1. the checkpoint is copied (size capped before reading) to ``models/.incoming-*.partial`` and fsynced, then
   loaded from that copy with every check of ``pixelar.load_checkpoint`` (the copy, not the upload, so nothing
   can change under the check);
2. one transaction inserts the row, renames the copy to ``models/<id>.safetensors``, fsyncs the folder and
   commits. A kill before the commit leaves no row (the transaction is lost) and at most a temp file or a file
   with no row; a kill after it leaves both.

Every ``Board`` sweeps the folder when it opens: temp files, files with no row, and rows whose file is gone are
removed, and entries still "scoring" are scored again. One server per data folder.

Scores are the server's, never the student's: held-out NLL in bits per pixel on the same 500 held-out images as
the model card (``pixelar.evaluate``), class fidelity at T = 1 by the project's classifier for conditional models
(a few samples per class: a rough figure), the parameters, the shape, the training budget and time from the
file's metadata, and a sheet of samples. Scoring runs on one background thread, one entry at a time, and waits
for sampling requests (``yield_to``, the batcher's ``idle`` event) between its pieces of work.

No gradio here: ``demo/board_tab.py`` is the page's section.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import logging
import os
import queue
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import pixelar
from pixelar.data import DATASET_NAMES, Split
from pixelar.fidelity import load_classifier
from pixelar.inputs import clean_text
from pixelar.interface import PixelModel
from pixelar.render import sample_grid

log = logging.getLogger(__name__)

NAME_CHARS = 40  # a display name's length limit
PER_SESSION = 3  # entries one session may have on the board at once
MAX_ENTRIES = 200  # entries on the board at once
MAX_FILE_BYTES = 96 * 2**20  # above the largest model the Train tab makes (V1, context 84, K 256: 88 MB)
SCORE_IMAGES = 500  # held-out images for the NLL: the model card's 500 (all of mnist-5k's held-out split)
SCORE_CHUNK = 10  # held-out images per piece of scoring work (sampling requests go first between pieces)
FIDELITY_PER_CLASS = 10  # samples per class for class fidelity at T = 1 (the model card uses 50)
SHEET_SAMPLES = 20  # the sheet of samples: two rows of ten (one of each class, twice, for a conditional model)
LOADED_MODELS = 16  # board models kept loaded for the other tabs' pickers (the least recently used go first)
TEACHER_KEY_ENV = "PIXELAR_TEACHER_KEY"
YIELD_SECONDS = 2.0  # the longest one piece of scoring waits for sampling requests
STATUSES = ("scoring", "ready", "failed")  # stored; "hidden" is a flag on top (``Entry.status`` shows it)

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,            -- SHA-256 of the publishing session's token (the token itself is never stored)
    created REAL NOT NULL,          -- Unix time
    state TEXT NOT NULL CHECK (state IN ('scoring', 'ready', 'failed')),
    hidden INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL, k INTEGER NOT NULL, context INTEGER NOT NULL, parameters INTEGER NOT NULL,
    conditional INTEGER NOT NULL, dataset TEXT NOT NULL,
    steps INTEGER, samples_seen INTEGER, batch_unit TEXT, train_seconds REAL,
    nll REAL, nll_images INTEGER, fidelity REAL, fidelity_per_class INTEGER, fidelity_note TEXT,
    error TEXT, sheet INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _secret(path: Path) -> str:
    """A random secret kept in ``path`` (readable by this user only), made on first use: the same after a restart."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_hex(32))
    return path.read_text().strip()


class BoardError(ValueError):
    """A publish or an action refused: the message says why, for the page."""


@dataclass(frozen=True)
class Entry:
    """One published model and its scores (None until scored, or where a score does not apply)."""

    id: int
    name: str
    owner: str
    created: float
    state: str
    hidden: bool
    kind: str
    k: int
    context: int
    parameters: int
    conditional: bool
    dataset: str
    steps: int | None
    samples_seen: int | None
    batch_unit: str | None
    train_seconds: float | None
    nll: float | None
    nll_images: int | None
    fidelity: float | None
    fidelity_per_class: int | None
    fidelity_note: str | None
    error: str | None
    sheet: bool

    @property
    def status(self) -> str:
        """"scoring", "ready", "failed" or "hidden"."""
        return "hidden" if self.hidden else self.state

    @property
    def key(self) -> str:
        """Its name in the other tabs' model pickers."""
        return f"board-{self.id}"

    def owned_by(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.owner, _owner_hash(token))


def _owner_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def display_name(value) -> str:
    """A display name as plain text: cleaned (``clean_text``), runs of spaces made one, at most ``NAME_CHARS``
    characters; a BoardError when nothing is left."""
    if not isinstance(value, str):
        raise BoardError("Give your entry a name.")
    name = " ".join(clean_text(value).replace("\ufffd", " ").split())
    if not name:
        raise BoardError("Give your entry a name.")
    if len(name) > NAME_CHARS:
        raise BoardError(f"Names are at most {NAME_CHARS} characters; this one has {len(name)}.")
    return name


def resolve_data_dir(option: str | Path | None, app_dir: Path) -> tuple[Path, str | None]:
    """The board's data folder and a notice for the page (None when the board will survive a restart).

    ``option`` (``--data-dir``) when given; else on a Hugging Face Space ``/data/pixelar-data`` when ``/data``
    exists and is writable (persistent storage); else ``pixelar-data/`` beside the app. A folder that cannot be
    written falls back to a temp folder, and the notice says the board will not survive a restart."""
    if option:
        wanted = Path(option)
    elif os.environ.get("SPACE_ID"):
        wanted = Path("/data/pixelar-data") if _writable(Path("/data")) else None
    else:
        wanted = app_dir / "pixelar-data"
    if wanted is not None:
        try:
            wanted.mkdir(parents=True, exist_ok=True)
            if _writable(wanted):
                return wanted, None
        except OSError:
            pass
    folder = Path(tempfile.mkdtemp(prefix="pixelar-data-"))
    where = "this Space has no persistent storage" if wanted is None else "its data folder cannot be written"
    log.warning("class board in the temp folder %s (%s): it will not survive a restart", folder, where)
    return folder, f"The class board is kept in a temporary folder ({where}): it will not survive a restart."


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some systems cannot open a folder; the rename is then as durable as they make it
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def default_datasets(root: str | Path = "data") -> Callable[[str], pixelar.Dataset]:
    """Data sets by name for scoring (loaded once each): mnist-5k offline, mnist and fashion where they can be had."""
    loaded: dict[str, pixelar.Dataset] = {}
    lock = threading.Lock()

    def load(name: str) -> pixelar.Dataset:
        with lock:
            if name not in loaded:
                loaded[name] = pixelar.load_dataset(name, root)
            return loaded[name]

    return load


class Board:
    """The class board in ``folder``. Thread-safe; one per server (and one server per folder).

    ``teacher_key``: the key that unlocks the teacher's actions (default: the ``PIXELAR_TEACHER_KEY`` environment
    variable; none set: no one can act on others' entries). ``classifiers``: the folder of
    ``classifier-<data set>.safetensors`` judges. ``yield_to``: an event that is cleared while sampling requests
    compute (the app batcher's ``idle``, ``services.batcher.idle``); scoring waits for it between pieces. ``score_images`` and the other
    sizes are the app's figures; tests make them small. ``start``: begin scoring at once (else call ``start()``).
    """

    def __init__(self, folder: str | Path, *, teacher_key: str | None = None, classifiers: str | Path | None = None,
                 datasets: Callable[[str], pixelar.Dataset] | None = None, yield_to: threading.Event | None = None,
                 score_images: int = SCORE_IMAGES, fidelity_per_class: int = FIDELITY_PER_CLASS,
                 sheet_samples: int = SHEET_SAMPLES, per_session: int = PER_SESSION, max_entries: int = MAX_ENTRIES,
                 max_file_bytes: int = MAX_FILE_BYTES, start: bool = True):
        self.folder = Path(folder)
        self.models_dir, self.sheets_dir = self.folder / "models", self.folder / "sheets"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.sheets_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.folder / "board.sqlite3"
        self.browser_secret = _secret(self.folder / "browser-secret")  # encrypts the token each browser keeps
        key = os.environ.get(TEACHER_KEY_ENV) if teacher_key is None else teacher_key
        self._teacher_digest = hashlib.sha256(key.encode()).digest() if key else None  # the key itself is not kept
        self.classifiers = Path(classifiers) if classifiers is not None else None
        self.datasets = datasets or default_datasets()
        self.yield_to = yield_to
        self.score_images, self.fidelity_per_class, self.sheet_samples = score_images, fidelity_per_class, sheet_samples
        self.per_session, self.max_entries, self.max_file_bytes = per_session, max_entries, max_file_bytes
        self._lock = threading.Lock()  # publishes and deletions, one at a time in this process
        self._loaded: collections.OrderedDict[int, PixelModel] = collections.OrderedDict()
        self._loaded_lock = threading.Lock()
        self._queue: queue.Queue[int] = queue.Queue()
        self._scorer: threading.Thread | None = None
        self._judges: dict[str, object] = {}
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        self.sweep()
        for entry in self.entries(include_hidden=True):
            if entry.state == "scoring":
                self._queue.put(entry.id)
        if start:
            self.start()

    # storage

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)  # transactions are explicit
        db.execute("PRAGMA synchronous=FULL")
        db.row_factory = sqlite3.Row
        return db

    @contextlib.contextmanager
    def _transaction(self):
        """A connection inside ``BEGIN IMMEDIATE``: committed when the block ends, rolled back if it raises, closed."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    @contextlib.contextmanager
    def _db(self):
        """A connection for one statement (autocommit), closed afterwards."""
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    def _model_path(self, entry_id: int) -> Path:
        return self.models_dir / f"{entry_id}.safetensors"

    def sheet_path(self, entry_id: int) -> Path:
        """Where an entry's sheet of samples is (a PNG; present once it has been scored)."""
        return self.sheets_dir / f"{entry_id}.png"

    def sweep(self) -> dict[str, int]:
        """Remove what a kill can leave: temp files, files with no row, rows with no file. Returns the counts."""
        removed = {"temp files": 0, "files without an entry": 0, "entries without a file": 0}
        with self._lock:
            with self._transaction() as db:
                ids = {row["id"] for row in db.execute("SELECT id FROM entries")}
                for entry_id in sorted(ids):
                    if not self._model_path(entry_id).is_file():
                        db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
                        ids.discard(entry_id)
                        removed["entries without a file"] += 1
            for folder, suffix in ((self.models_dir, ".safetensors"), (self.sheets_dir, ".png")):
                for path in folder.iterdir():
                    if path.name.startswith("."):
                        kind = "temp files"
                    elif path.suffix == suffix and path.stem.isdigit() and int(path.stem) in ids:
                        continue
                    else:
                        kind = "files without an entry"
                    _remove(path)
                    removed[kind] += 1
        if any(removed.values()):
            log.info("board sweep: removed %s", ", ".join(f"{n} {what}" for what, n in removed.items() if n))
        return removed

    # reading

    def entries(self, include_hidden: bool = False) -> list[Entry]:
        """Every entry, sorted for the board: by K, then held-out NLL (lowest first; unscored last), then age."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM entries" + ("" if include_hidden else " WHERE hidden = 0")).fetchall()
        entries = [_entry(row) for row in rows]
        return sorted(entries, key=lambda e: (e.k, e.nll is None, e.nll if e.nll is not None else 0.0, e.created, e.id))

    def entry(self, entry_id) -> Entry | None:
        try:
            entry_id = int(entry_id)
        except (TypeError, ValueError, OverflowError):
            return None
        with self._db() as db:
            row = db.execute("SELECT * FROM entries WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row is not None else None

    @property
    def frozen(self) -> bool:
        """A frozen board takes no new entries and no students' deletions (the teacher's actions still work)."""
        with self._db() as db:
            row = db.execute("SELECT value FROM settings WHERE key = 'frozen'").fetchone()
        return row is not None and row["value"] == "1"

    # the other tabs' pickers

    def labels(self) -> dict[str, str]:
        """Ready, visible entries for the model pickers, best first within each K:
        ``{"board-7": "board · Ada's model (#7) · V3 · 0.47 bits/px", ...}``."""
        return {e.key: " · ".join(["board", f"{e.name} (#{e.id})", e.kind.upper(), *([f"K {e.k}"] if e.k != 16 else []),
                                   f"{e.nll:.2f} bits/px"])
                for e in self.entries() if e.state == "ready"}

    def _ready(self, key: str):
        """The ready, visible entry whose picker name is ``key`` (``"board-7"``); KeyError if there is none."""
        entry = self.entry(key[len("board-"):]) if isinstance(key, str) and key.startswith("board-") else None
        if entry is None or entry.hidden or entry.state != "ready":
            raise KeyError(key)
        return entry

    def title(self, key: str) -> str:
        """What captions call a ready entry, by its picker name: ``"Ada's model (board #7)"`` (plain text, cleaned of
        invalid Unicode; each view escapes it); KeyError if there is none."""
        entry = self._ready(key)
        return clean_text(f"{entry.name} (board #{entry.id})")

    def model(self, key: str) -> PixelModel:
        """The loaded model of a ready, visible entry by its picker name (``"board-7"``); KeyError if there is none.
        Models are shared by every session and only read; a few stay loaded, the least recently used go."""
        entry = self._ready(key)
        with self._loaded_lock:
            if entry.id in self._loaded:
                self._loaded.move_to_end(entry.id)
                return self._loaded[entry.id]
        model = pixelar.load_checkpoint(self._model_path(entry.id))
        with self._loaded_lock:
            model = self._loaded.setdefault(entry.id, model)
            while len(self._loaded) > LOADED_MODELS:
                self._loaded.popitem(last=False)
        return model

    def models(self) -> dict[str, PixelModel]:
        """Every ready, visible entry's model by picker name (loads each: prefer ``labels`` and ``model``)."""
        return {key: self.model(key) for key in self.labels()}

    # publishing

    def publish_file(self, path: str | Path, name, token: str) -> Entry:
        """Publish an uploaded checkpoint under ``name`` for the session ``token``; BoardError says why not."""
        name = display_name(name)
        self._check_room(token)
        path = Path(path)
        try:
            size = path.stat().st_size
        except (OSError, ValueError):
            raise BoardError("The upload could not be read; try again.") from None
        if not path.is_file():
            raise BoardError("The upload is not a file.")
        if size > self.max_file_bytes:
            raise BoardError(f"The file is {size / 2**20:.0f} MB; the board takes checkpoints of at most "
                             f"{self.max_file_bytes / 2**20:.0f} MB.")
        temp = self._temp_copy(lambda out: _copy_capped(path, out, self.max_file_bytes))
        return self._publish(temp, name, token)

    def publish_model(self, model: PixelModel, name, token: str) -> Entry:
        """Publish a model trained in this app (its metadata must name its data set)."""
        name = display_name(name)
        self._check_room(token)

        def write(out: Path) -> None:
            info = {k: v for k, v in model.metadata.items()}
            pixelar.save_checkpoint(model, out, **info)
            model.metadata = info  # save_checkpoint rewrites it; keep the session's model as it was

        temp = self._temp_copy(write)
        return self._publish(temp, name, token)

    def _temp_copy(self, write: Callable[[Path], None]) -> Path:
        fd, temp = tempfile.mkstemp(prefix=".incoming-", suffix=".partial", dir=self.models_dir)
        os.close(fd)
        temp = Path(temp)
        try:
            write(temp)
            with open(temp, "rb+") as f:
                os.fsync(f.fileno())
        except BaseException:
            _remove(temp)
            raise
        return temp

    def _publish(self, temp: Path, name: str, token: str) -> Entry:
        try:
            try:
                model = pixelar.load_checkpoint(temp)
            except pixelar.CheckpointError as error:
                why = str(error).replace(str(temp), "the file")
                raise BoardError(f"That is not a checkpoint the board can take: {why}") from None
            dataset = model.metadata.get("dataset")
            if dataset not in DATASET_NAMES:
                raise BoardError("That checkpoint does not say which of the app's data sets "
                                 f"({', '.join(DATASET_NAMES)}) it was trained on, so it cannot be scored on its "
                                 "held-out images.")
            meta = model.metadata
            row = {
                "name": name, "owner": _owner_hash(token), "created": time.time(), "state": "scoring",
                "kind": model.name, "k": model.config.k, "context": model.config.context,
                "parameters": pixelar.count_parameters(model), "conditional": int(model.conditional),
                "dataset": dataset, "steps": meta.get("steps"), "samples_seen": meta.get("samples_seen"),
                "batch_unit": meta.get("batch_unit"), "train_seconds": meta.get("train_seconds"),
            }
            entry_id = None
            with self._lock:
                try:
                    with self._transaction() as db:
                        self._check_room(token, db)
                        cursor = db.execute(f"INSERT INTO entries ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                            tuple(row.values()))
                        entry_id = cursor.lastrowid
                        os.replace(temp, self._model_path(entry_id))
                        _fsync_folder(self.models_dir)
                except BaseException:
                    if entry_id is not None:  # the file went into place but its row was not committed
                        _remove(self._model_path(entry_id))
                    raise
        finally:
            _remove(temp)
        log.info("board: entry %d published (%s, %s)", entry_id, model.name, clean_text(dataset))
        self._queue.put(entry_id)
        return self.entry(entry_id)

    def _check_room(self, token: str, db: sqlite3.Connection | None = None) -> None:
        if not token:
            raise BoardError("This page has no session yet; reload it and try again.")
        own = db or self._connect()
        try:
            frozen = own.execute("SELECT value FROM settings WHERE key = 'frozen'").fetchone()
            if frozen is not None and frozen["value"] == "1":
                raise BoardError("The teacher has frozen the board: it takes no new entries for now.")
            total = own.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            mine = own.execute("SELECT COUNT(*) FROM entries WHERE owner = ?", (_owner_hash(token),)).fetchone()[0]
        finally:
            if db is None:
                own.close()
        if mine >= self.per_session:
            raise BoardError(f"You already have {mine} entries on the board (at most {self.per_session} each): "
                             "delete one of yours first.")
        if total >= self.max_entries:
            raise BoardError(f"The board is full ({self.max_entries} entries); ask the teacher to make room.")

    # deleting, hiding, freezing

    def is_teacher(self, key) -> bool:
        """Whether ``key`` is the teacher's key (always False when none is set). Constant-time comparison."""
        if self._teacher_digest is None or not isinstance(key, str) or not key:
            return False
        return hmac.compare_digest(hashlib.sha256(key.encode("utf-8", "replace")).digest(), self._teacher_digest)

    @property
    def has_teacher(self) -> bool:
        return self._teacher_digest is not None

    def check_teacher(self, key) -> None:
        """A BoardError unless ``key`` is the teacher's key (or when none is set)."""
        if self._teacher_digest is None:
            raise BoardError(f"No teacher key is set on this server (start it with {TEACHER_KEY_ENV} set).")
        if not self.is_teacher(key):
            raise BoardError("That is not the teacher's key.")

    def delete(self, entry_id, *, token: str | None = None, teacher_key: str | None = None) -> Entry:
        """Delete an entry: the owner's session may delete its own (unless the board is frozen), the teacher any."""
        entry = self.entry(entry_id)
        if entry is None:
            raise BoardError(f"There is no entry #{clean_text(str(entry_id))[:12]} on the board.")
        if teacher_key:
            self.check_teacher(teacher_key)
        elif not entry.owned_by(token):
            raise BoardError("You can delete only your own entries.")
        elif self.frozen:
            raise BoardError("The teacher has frozen the board: entries cannot be deleted for now.")
        self._remove_entries([entry.id])
        return entry

    def hide(self, entry_id, teacher_key: str, hidden: bool = True) -> Entry:
        """The teacher hides an entry from the board and the pickers (or shows it again)."""
        self.check_teacher(teacher_key)
        entry = self.entry(entry_id)
        if entry is None:
            raise BoardError(f"There is no entry #{clean_text(str(entry_id))[:12]} on the board.")
        with self._lock, self._db() as db:
            db.execute("UPDATE entries SET hidden = ? WHERE id = ?", (int(hidden), entry.id))
        with self._loaded_lock:
            self._loaded.pop(entry.id, None)
        return self.entry(entry.id)

    def clear(self, teacher_key: str) -> int:
        """The teacher empties the board; returns how many entries went."""
        self.check_teacher(teacher_key)
        ids = [e.id for e in self.entries(include_hidden=True)]
        self._remove_entries(ids)
        return len(ids)

    def freeze(self, teacher_key: str, frozen: bool = True) -> None:
        """The teacher freezes the board (no new entries, no students' deletions) or thaws it."""
        self.check_teacher(teacher_key)
        with self._lock, self._db() as db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('frozen', ?)", ("1" if frozen else "0",))

    def _remove_entries(self, ids: list[int]) -> None:
        """Rows first (one transaction), then files: a kill in between leaves files that the next sweep removes."""
        if not ids:
            return
        with self._lock:
            with self._transaction() as db:
                db.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in ids])
            for entry_id in ids:
                _remove(self._model_path(entry_id))
                _remove(self.sheet_path(entry_id))
        with self._loaded_lock:
            for entry_id in ids:
                self._loaded.pop(entry_id, None)

    # scoring

    def start(self) -> None:
        """Start the scoring thread (once)."""
        with self._lock:
            if self._scorer is None:
                self._scorer = threading.Thread(target=self._score_forever, name="pixelar-board-scorer", daemon=True)
                self._scorer.start()

    def wait_scored(self, timeout: float = 60.0) -> bool:
        """Wait until no entry is being scored or waiting to be (for tests and the CLI); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.05)
        return False

    def _score_forever(self) -> None:
        torch.set_num_threads(1)
        while True:
            entry_id = self._queue.get()
            try:
                self.score(entry_id)
            except Exception:  # recorded on the entry; the scorer goes on
                log.exception("board: scoring entry %d failed", entry_id)
            finally:
                self._queue.task_done()

    def _yield(self) -> None:
        if self.yield_to is not None:
            self.yield_to.wait(YIELD_SECONDS)

    def score(self, entry_id: int) -> Entry | None:
        """Score one entry now, in this thread (the scoring thread calls this); the row is updated when done."""
        entry = self.entry(entry_id)
        if entry is None or entry.state != "scoring":
            return entry
        try:
            scores = self._scores(entry)
        except Exception as error:
            why = str(error) if isinstance(error, (ValueError, pixelar.DataUnavailable, pixelar.CheckpointError)) \
                else f"{type(error).__name__} while scoring"
            log.warning("board: entry %d could not be scored: %s", entry_id, clean_text(why))
            scores = {"state": "failed", "error": clean_text(why)[:300]}
        with self._lock, self._db() as db:
            updated = db.execute(f"UPDATE entries SET {', '.join(f'{k} = ?' for k in scores)} WHERE id = ?",
                                 (*scores.values(), entry_id)).rowcount
        if not updated:  # deleted while it was scored
            _remove(self.sheet_path(entry_id))
        return self.entry(entry_id)

    def _scores(self, entry: Entry) -> dict:
        model = pixelar.load_checkpoint(self._model_path(entry.id))
        dataset = self.datasets(entry.dataset)
        held_out = dataset.held_out.subset(self.score_images)
        total = 0.0
        for start in range(0, len(held_out), SCORE_CHUNK):
            self._yield()
            chunk = Split(held_out.images[start:start + SCORE_CHUNK], held_out.labels[start:start + SCORE_CHUNK])
            total += pixelar.evaluate(model, chunk) * len(chunk)
        scores = {"nll": round(total / len(held_out), 4), "nll_images": len(held_out)}
        if model.conditional:
            self._yield()
            judge, note = self._judge(dataset.name)
            if judge is not None and getattr(judge.fc2, "out_features", None) == model.config.num_classes:
                scores |= {"fidelity": round(self._fidelity(model, judge), 4),
                           "fidelity_per_class": self.fidelity_per_class, "fidelity_note": note}
            else:
                scores["fidelity_note"] = note or f"no classifier for {dataset.name}"
        self._yield()
        self._write_sheet(entry.id, model)
        return scores | {"state": "ready", "sheet": 1}

    def _fidelity(self, model: PixelModel, judge) -> float:
        """Share of ``fidelity_per_class`` samples of each class at T = 1 that ``judge`` reads as that class (as
        ``pixelar.fidelity.class_fidelity`` measures it), one class per piece of work (seed: the class)."""
        right = 0
        for label in range(model.config.num_classes):
            self._yield()
            trace = pixelar.sample(model, self.fidelity_per_class, labels=label, temperature=1.0, seed=label)
            right += int((judge.predict(trace.images()) == label).sum())
        return right / (self.fidelity_per_class * model.config.num_classes)

    def _judge(self, dataset_name: str):
        """The classifier for a data set and a note on it: mnist uses mnist-5k's judge when it has none of its own."""
        if self.classifiers is None:
            return None, "no classifier on this server"
        for name in (dataset_name, "mnist-5k") if dataset_name == "mnist" else (dataset_name,):
            path = self.classifiers / f"classifier-{name}.safetensors"
            if path.is_file():
                if name not in self._judges:
                    self._judges[name] = load_classifier(path)
                note = None if name == dataset_name else f"judged by the {name} classifier"
                return self._judges[name], note
        return None, f"no classifier for {dataset_name}"

    def _write_sheet(self, entry_id: int, model: PixelModel) -> None:
        n = self.sheet_samples
        labels = np.arange(n) % model.config.num_classes if model.conditional else None
        trace = pixelar.sample(model, n, labels=labels, temperature=1.0, seed=0)
        picture = sample_grid(trace.images(), columns=min(10, n), scale=3)
        fd, temp = tempfile.mkstemp(prefix=".sheet-", suffix=".partial", dir=self.sheets_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                picture.save(f, format="PNG")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, self.sheet_path(entry_id))
        finally:
            _remove(Path(temp))


def _entry(row: sqlite3.Row) -> Entry:
    values = dict(row)
    return Entry(**{**values, "hidden": bool(values["hidden"]), "conditional": bool(values["conditional"]),
                    "sheet": bool(values["sheet"])})


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)
    except OSError as error:
        log.warning("board: could not remove %s (%s)", clean_text(str(path)), error.strerror)


def _copy_capped(source: Path, target: Path, limit: int) -> None:
    """Copy ``source`` to ``target``, reading at most ``limit`` bytes (a file that grows is refused)."""
    copied = 0
    with open(source, "rb") as src, open(target, "wb") as out:
        while chunk := src.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                raise BoardError(f"The file is over {limit / 2**20:.0f} MB; the board takes no larger checkpoint.")
            out.write(chunk)
