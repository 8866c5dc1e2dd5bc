"""One safetensors file per model: the weights plus JSON metadata that rebuilds it. Nothing is unpickled."""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .models import CONFIGS, MODELS, PixelMLP

FORMAT = "pixelar-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, foreign, or does not match the model it describes."""


def save_checkpoint(model: PixelMLP, path: str | Path, **metadata) -> Path:
    """Write ``model`` and ``metadata`` (data set, steps, samples seen, seconds, device, NLL...) atomically."""
    path = Path(path)
    info = {**model.metadata, **metadata, "model": model.name, "config": dataclasses.asdict(model.config)}
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "pixelar": json.dumps(info)}
    save_atomically(model.state_dict(), path, header)
    model.metadata = {k: v for k, v in info.items() if k not in ("model", "config")}
    return path


def save_atomically(state: dict[str, torch.Tensor], path: Path, header: dict[str, str]) -> None:
    """Write a safetensors file to a temporary name beside ``path``, then rename it into place."""
    tensors = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_metadata(path: str | Path) -> dict:
    """The checkpoint's metadata (model name, config, training budget, measured NLL) without loading weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= min(os.path.getsize(path) - 8, 100_000_000):
                raise CheckpointError(f"{path} is not a pixelar checkpoint (not a safetensors file, or truncated)")
            header = json.loads(f.read(size))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{path} is not a pixelar checkpoint (unreadable header: {error})") from None
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a pixelar checkpoint (no pixelar metadata)")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format_version')}; this pixelar reads {FORMAT_VERSION}")
    try:
        info = json.loads(meta["pixelar"])
    except (KeyError, ValueError):
        raise CheckpointError(f"{path} has damaged pixelar metadata") from None
    if info.get("model") not in MODELS:
        raise CheckpointError(f"{path} describes unknown model {info.get('model')!r}")
    return info


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> PixelMLP:
    """Rebuild the model a checkpoint describes, load its weights, and attach its metadata (``model.metadata``)."""
    info = read_metadata(path)
    name = info["model"]
    try:
        model = MODELS[name](CONFIGS[name](**info["config"]))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its {name} config cannot be built ({error})") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is damaged or truncated ({error})") from None
    expected = model.state_dict()
    if set(tensors) != set(expected) or any(tensors[k].shape != expected[k].shape for k in expected):
        raise CheckpointError(f"{path}: its weights do not match the {name} model its metadata describes")
    model.load_state_dict(tensors)
    model.metadata = {k: v for k, v in info.items() if k not in ("model", "config")}
    return model.to(device).eval()
