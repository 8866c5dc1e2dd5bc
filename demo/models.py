"""The app's adapter to the core's models: pretrained checkpoints in a folder, and models trained in a session."""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

from gradio.utils import get_upload_folder

import pixelar
from pixelar.data import DIGITS
from pixelar.fidelity import is_classifier_file
from pixelar.inputs import clean_text
from pixelar.interface import PixelModel

from .text import as_markdown

log = logging.getLogger(__name__)

TRAINED_PER_SESSION = 3  # a session keeps its newest trained models; older ones are dropped to bound memory


def model_order() -> tuple[str, ...]:
    """Every registered model kind, in the core's registry order (V1, V2, V3, V4, then any added)."""
    return tuple(pixelar.MODELS)


def model_title(name: str) -> str:
    """``"v3"`` -> ``"V3 (token embeddings + positions + class)"``."""
    return f"{name.upper()} ({pixelar.MODELS[name].description})"


def sessions_root() -> Path:
    """This server's folder of session folders, inside Gradio's cache: Gradio serves a file there from where it was
    written, and copies any other file it offers for download into its cache (a checkpoint would be written twice)."""
    return Path(get_upload_folder()) / f"pixelar-sessions-{os.getpid()}"


def remove_session_folders() -> None:
    """Delete every session's files (at shutdown; a session's own go when its state expires)."""
    shutil.rmtree(sessions_root(), ignore_errors=True)


class Workspace:
    """What one browser session owns: models trained in it (oldest first), its files, its training switch.

    Lives in a ``gr.State`` (None until a handler first needs it); never shared between sessions.
    """

    def __init__(self, token: str | None = None):
        self.models: dict[str, PixelModel] = {}
        self.trained_count = 0
        self.stop: threading.Event | None = None  # set by Stop, and when a run ends; a new one for every run
        # unguessable: the class board knows this session's entries by it (the browser keeps it: ``board_tab``)
        self.token = token or secrets.token_urlsafe(24)
        self._folder: Path | None = None

    @property
    def folder(self) -> Path:
        """A private temp folder for this session's downloads (GIFs, checkpoints), under ``sessions_root``."""
        if self._folder is None:
            sessions_root().mkdir(parents=True, exist_ok=True)
            self._folder = Path(tempfile.mkdtemp(prefix="session-", dir=sessions_root()))
        return self._folder

    def add(self, model: PixelModel) -> str:
        """Keep a freshly trained model under a new name like ``my-v3-1`` and return the name."""
        self.trained_count += 1
        name = f"my-{model.name}-{self.trained_count}"
        self.models[name] = model
        while len(self.models) > TRAINED_PER_SESSION:
            self.models.pop(next(iter(self.models)))
        return name

    def close(self) -> None:
        """Stop its training run and delete its files (gradio calls this when the session's state expires)."""
        if self.stop is not None:
            self.stop.set()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def close_workspace(workspace: Workspace | None) -> None:
    """The session state's delete callback."""
    if workspace is not None:
        workspace.close()


class Shelf:
    """The pretrained checkpoints in one folder (``*.safetensors``), plus each session's own models.

    The folder is re-read whenever a picker is refreshed, so a checkpoint written while the app runs shows up
    without a restart. Every file is loaded and checked when first seen (and again when it changes): a bad one
    is skipped with a log line and a notice on the page, so it never reaches a picker. Loaded models are shared
    by all sessions and only ever read.
    """

    def __init__(self, folder: str | Path, extra=None):
        self.folder = Path(folder)
        # Another source of shared, read-only models offered after the shipped ones (the class board, demo/board.py):
        # ``extra.labels()`` -> {name: label}, ``extra.model(name)`` -> the model and ``extra.title(name)`` -> what
        # captions call it, each KeyError when it has none.
        self.extra = extra
        self._entries: dict[Path, tuple[float, PixelModel | None, str | None]] = {}  # mtime, model, why refused
        self._lock = threading.Lock()

    def shipped(self) -> dict[str, dict]:
        """Checkpoints that load, by file stem, V1, V2, V3 first: ``{"v3": metadata, ...}``, each with the model's
        kind (``"model"``) and its config as a dict (``"config"``: ``load_checkpoint`` keeps neither in metadata)."""
        found = {path.stem: model.metadata | {"model": model.name, "config": vars(model.config)}
                 for path, model in self._scan().items()}
        return dict(sorted(found.items(), key=lambda item: (item[0] not in model_order(), item[0])))

    def refused(self) -> dict[str, str]:
        """Files in the folder that were skipped, and why: ``{"broken.safetensors": "reason"}``."""
        self._scan()
        with self._lock:
            return {path.name: error for path, (_, _, error) in sorted(self._entries.items()) if error}

    def notice(self) -> str:
        """A line for the page about skipped files ("" when there are none)."""
        refused = self.refused()
        if not refused:
            return ""
        names = ", ".join(as_markdown(name) for name in refused)
        return (f"Skipped {len(refused)} file(s) in {as_markdown(self.folder.name)}/ that are not usable pixelar checkpoints: "
                f"{names}. See the server log for why.")

    def _scan(self) -> dict[Path, PixelModel]:
        """Load every ``*.safetensors`` in the folder that changed since the last look; a bad file (a dangling link
        or a link loop, a name that is not UTF-8 too) is logged once and skipped, never fatal."""
        with self._lock:
            paths = [p for p in sorted(self.folder.glob("*.safetensors")) if not is_classifier_file(p)]
            for gone in set(self._entries) - set(paths):
                del self._entries[gone]
            for path in paths:
                try:
                    mtime = path.stat().st_mtime
                except OSError as error:  # a dangling link, a link loop
                    mtime, why = None, f"{path} cannot be read ({error.strerror})"
                else:
                    why = None if _is_utf8(path.name) else f"{path}: its name is not valid UTF-8; rename it"
                if path in self._entries and self._entries[path][0] == mtime:
                    continue
                model = None
                if why is None:
                    try:
                        model = pixelar.load_checkpoint(path)
                    except pixelar.CheckpointError as error:
                        why = str(error)
                if why:
                    log.warning("skipping %s: %s", clean_text(str(path)), clean_text(why))
                self._entries[path] = (mtime, model, why)
            return {path: model for path, (_, model, _) in self._entries.items() if model is not None}

    def choices(self, workspace: Workspace | None) -> list[tuple[str, str]]:
        """(label, name) pairs for a model picker: the shipped models, the extra source's, then this session's."""
        pairs = [(self._shipped_label(name, info), name) for name, info in self.shipped().items()]
        pairs += [(clean_text(label), name) for name, label in (self.extra.labels().items() if self.extra else ())]
        for name, model in (workspace.models.items() if workspace else ()):
            pairs.append((self._trained_label(name, model), name))
        return pairs

    def default(self, workspace: Workspace | None) -> str | None:
        """The model a picker starts on: the shipped V3 if there is one, else the first there is."""
        names = [name for _, name in self.choices(workspace)]
        return "v3" if "v3" in names else (names[0] if names else None)

    def get(self, name: str, workspace: Workspace | None) -> PixelModel:
        """The model called ``name`` for this session; ValueError (with the choices) if there is none."""
        if not isinstance(name, str) or not name:
            raise ValueError("choose a model" if self.choices(workspace) else self.hint())
        if workspace is not None and name in workspace.models:
            return workspace.models[name]
        loaded = {path.stem: model for path, model in self._scan().items()}
        if name in loaded:
            return loaded[name]
        if self.extra is not None:
            try:
                return self.extra.model(name)
            except KeyError:
                pass
        known = [n for _, n in self.choices(workspace)]
        if not known:
            raise ValueError(f"unknown model {name!r}: there are no models yet. {self.hint()}")
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(known)}")

    def title(self, name: str) -> str:
        """What captions call the model picked as ``name``: a class board entry by its own name, any other by
        ``name`` itself (the file's stem, or the name this session gave it)."""
        if self.extra is not None:
            try:
                return self.extra.title(name)
            except KeyError:
                pass
        return name

    def by_kind(self) -> dict[str, str]:
        """One shipped checkpoint per model kind, for side-by-side comparisons: ``{"v1": "v1", ...}``."""
        kinds: dict[str, str] = {}
        for name, info in self.shipped().items():
            kinds.setdefault(info["model"], name)
        return {kind: kinds[kind] for kind in model_order() if kind in kinds}

    def hint(self) -> str:
        """What to do when there are no pretrained models."""
        return (
            f"No pretrained models in {self.folder}. Train one in the Train tab (it appears here when it finishes), "
            f"or run: python -m pixelar train --model v3 --out {self.folder}/v3.safetensors"
        )

    @staticmethod
    def class_names(model: PixelModel) -> list[str]:
        """The names of the classes the model was trained on (the digits unless its metadata says otherwise)."""
        return list(model.metadata.get("class_names") or DIGITS)

    @staticmethod
    def _shipped_label(name: str, info: dict) -> str:
        kind = info["model"]
        label = name.upper() if name == kind else f"{clean_text(name)} ({kind.upper()})"
        return " · ".join([label, "pretrained", *_shape(kind, info["config"]), *_nll(info, info["config"]["k"])])

    @staticmethod
    def _trained_label(name: str, model: PixelModel) -> str:
        return " · ".join([name, "trained here", *_shape(model.name, vars(model.config)), *_nll(model.metadata, model.k)])


def _is_utf8(name: str) -> bool:
    """Whether a file name came from valid UTF-8 (a non-UTF-8 byte arrives as a lone surrogate)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _shape(kind: str, config: dict) -> list[str]:
    """The context length of a model where it differs from its kind's default: ["context 84"]."""
    default = vars(pixelar.MODELS[kind].config_class())
    return [f"context {config['context']}"] if config.get("context", default["context"]) != default["context"] else []


def _nll(metadata: dict, k: int) -> list[str]:
    """Held-out bits per pixel with its K (bits compare only at the same K), or the K alone."""
    nll = metadata.get("held_out_nll")
    return [f"K {k}"] if nll is None else [f"{nll:.2f} bits/px at K {k}"]
