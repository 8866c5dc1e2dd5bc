"""One safetensors file per model: the weights plus JSON metadata that rebuilds it. Nothing is unpickled.

A checkpoint is untrusted input. Loading reads the JSON header alone first, checks every metadata type and
config value, and compares each tensor's name, dtype, shape and byte range with the model the metadata
describes (built on the ``meta`` device, which allocates nothing). Only then are the weights read; they must
be finite and match the SHA-256 checksum written beside them. Any failure is a ``CheckpointError`` naming the file and the reason.
Every text in the metadata is cleaned as it is read (``pixelar.inputs.clean_text``): invalid Unicode is replaced.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .inputs import clean_text
from .interface import MODELS, PixelModel, check_settings
from .models import seeded

FORMAT = "pixelar-checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1_000_000  # a real header is a few kB
HEADER_ENTRIES = {"format", "format_version", "pixelar", "weights_sha256"}  # what save_atomically's callers write
MAX_PARAMETERS = 50_000_000  # 200 MB of float32: far above any model here
METADATA_TYPES = {  # known metadata keys the app and CLI read, and the types they must have
    "dataset": str, "steps": int, "samples_seen": int, "train_seconds": (int, float), "device": str,
    "held_out_nll": (int, float), "held_out_images": int, "batch_size": int, "learning_rate": (int, float),
    "weight_decay": (int, float),
    "lr_schedule": str, "seed": int, "stopped_early": bool, "class_names": list, "precision": str,
    "batch_unit": str, "time_budget_seconds": (int, float),
}


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, foreign, or does not match the model it describes."""


def save_checkpoint(model: PixelModel, path: str | Path, **metadata) -> Path:
    """Write ``model`` and ``metadata`` (data set, steps, samples seen, seconds, device, NLL...) atomically."""
    path = Path(path)
    info = {**model.metadata, **metadata, "model": model.name, "config": dataclasses.asdict(model.config)}
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "pixelar": json.dumps(info)}
    save_atomically(model.state_dict(), path, header)
    model.metadata = {k: v for k, v in info.items() if k not in ("model", "config")}
    return path


def run_metadata(model: PixelModel, result, config, dataset, held_out_nll: float, held_out_images: int) -> dict:
    """What a checkpoint records about the training run that made it (the one place this is assembled)."""
    return {
        "dataset": dataset.name, "class_names": list(dataset.class_names), "steps": result.steps,
        "samples_seen": result.samples_seen, "train_seconds": round(result.seconds, 1), "device": result.device,
        "held_out_nll": round(held_out_nll, 4), "held_out_images": held_out_images, "batch_size": config.batch_size,
        "learning_rate": config.learning_rate_for(model), "weight_decay": config.weight_decay_for(model),
        "lr_schedule": config.lr_schedule, "seed": config.seed, "stopped_early": result.stopped, "precision": result.precision,
        "batch_unit": model.batch_unit, "time_budget_seconds": config.max_seconds,
    }


def save_atomically(state: dict[str, torch.Tensor], path: Path, header: dict[str, str]) -> None:
    """Write a safetensors file to a temporary name beside ``path``, then rename it into place."""
    tensors = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in state.items()}
    header = {**header, "weights_sha256": weights_digest(tensors)}
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


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the weights (names, shapes and float32 bytes, by name): any changed byte changes it."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def read_header(path: str | Path) -> tuple[dict, dict]:
    """The safetensors header of ``path``, checked for shape: (tensor entries by name, ``__metadata__``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        file_size = os.path.getsize(path)
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= min(file_size - 8, MAX_HEADER_BYTES):
                raise CheckpointError(f"{path} is not a pixelar checkpoint (not a safetensors file, or truncated)")
            header = json.loads(f.read(size))
    except CheckpointError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as error:
        raise CheckpointError(f"{path} is not a pixelar checkpoint (unreadable header: {error})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a pixelar checkpoint (its header is not a JSON object)")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a pixelar checkpoint (its metadata is not a JSON object)")
    data_size = file_size - 8 - size
    for name, entry in header.items():
        if not _is_tensor_entry(entry, data_size):
            raise CheckpointError(f"{path}: tensor {name!r} is described wrongly or lies outside the file")
    return header, meta


def _is_tensor_entry(entry, data_size: int) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str):
        return False
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    return (
        isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)
        and isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= data_size
    )


def read_metadata(path: str | Path) -> dict:
    """The checkpoint's metadata (model name, config, training budget, measured NLL), checked, without weights."""
    _, meta = read_header(path)
    return _checked_info(path, meta)


def _checked_info(path, meta: dict) -> dict:
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a pixelar checkpoint (no pixelar metadata)")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format_version')!r}; this pixelar reads {FORMAT_VERSION}")
    try:
        info = _cleaned(json.loads(meta["pixelar"]))
    except (KeyError, TypeError, ValueError, RecursionError):
        raise CheckpointError(f"{path} has damaged pixelar metadata") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{path} has damaged pixelar metadata (not a JSON object)")
    name = info.get("model")
    if not isinstance(name, str) or name not in MODELS:
        raise CheckpointError(f"{path} describes unknown model {name!r}")
    info["config"] = _checked_config(path, name, info.get("config"))
    for key, kind in METADATA_TYPES.items():
        value = info.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CheckpointError(f"{path}: metadata {key!r} has the wrong type ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise CheckpointError(f"{path}: metadata {key!r} is not a finite number")
    names = info.get("class_names")
    num_classes = info["config"].get("num_classes")
    if names is not None and (
        not all(isinstance(n, str) and len(n) <= 100 for n in names)
        or (num_classes is not None and len(names) != num_classes)
    ):
        raise CheckpointError(f"{path}: metadata 'class_names' must be {num_classes or 'the'} names, each a short text")
    return info


def _cleaned(value):
    """A parsed JSON value with every string in it (keys too) cleaned by ``clean_text``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_cleaned(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): _cleaned(v) for k, v in value.items()}
    return value


def _checked_config(path, name: str, config) -> dict:
    """The file's config, checked against the model's settings and their ranges (``check_settings``)."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: its {name} config is not a set of {name} settings")
    try:
        return check_settings(MODELS[name].config_class, config, name)
    except ValueError as error:
        raise CheckpointError(f"{path}: config: {error}") from None


def stored_digest(path, meta: dict) -> str | None:
    """The weights checksum a header records (None in files written before checksums), checked for form. A header
    entry that pixelar never writes is refused: a damaged key, the checksum's own included, must not pass the file
    off as one written before checksums."""
    unknown = sorted(set(meta) - HEADER_ENTRIES)
    if unknown:
        raise CheckpointError(f"{path}: its header has entries pixelar never writes ({', '.join(unknown)[:80]}): damaged")
    digest = meta.get("weights_sha256")
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= set("0123456789abcdef")):
        raise CheckpointError(f"{path}: its weights checksum is damaged")
    return digest


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> PixelModel:
    """Rebuild the model a checkpoint describes, load its weights, and attach its metadata (``model.metadata``)."""
    header, meta = read_header(path)
    info = _checked_info(path, meta)
    name = info["model"]
    model = load_weights(path, header, MODELS[name], MODELS[name].config_class(**info["config"]), stored_digest(path, meta))
    model.metadata = {k: v for k, v in info.items() if k not in ("model", "config")}
    return model.to(device).eval()


def load_weights(path, header: dict, cls: type[nn.Module], config, expected_digest: str | None) -> nn.Module:
    """``cls(config)`` with the file's weights, after checking them against its shapes on the meta device,
    and against ``expected_digest`` (files written before checksums have none)."""
    try:
        with torch.device("meta"):
            shapes = {key: tuple(t.shape) for key, t in cls(config).state_dict().items()}
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its config cannot be built ({error})") from None
    if sum(math.prod(shape) for shape in shapes.values()) > MAX_PARAMETERS:
        raise CheckpointError(f"{path}: the model it describes has more than {MAX_PARAMETERS:,} parameters")
    found = {key: (entry["dtype"], tuple(entry["shape"])) for key, entry in header.items()}
    if found != {key: ("F32", shape) for key, shape in shapes.items()}:
        raise CheckpointError(f"{path}: its weights do not match the model its metadata describes")
    if any(e["data_offsets"][1] - e["data_offsets"][0] != 4 * math.prod(e["shape"]) for e in header.values()):
        raise CheckpointError(f"{path}: a tensor's byte range does not match its shape")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is damaged or truncated ({error})") from None
    for key, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: tensor {key!r} holds NaN or infinite values")
    if expected_digest is not None and weights_digest(tensors) != expected_digest:
        raise CheckpointError(f"{path}: its weights were changed after it was written (checksum mismatch)")
    model = seeded(cls, config, 0)
    model.load_state_dict(tensors)
    return model
