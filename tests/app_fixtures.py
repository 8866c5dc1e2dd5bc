"""Fixtures for the app's tests: tiny real checkpoints and the real app (``python app.py``) in a subprocess.

Starting the app and pressing its buttons over HTTP live in ``benchmarks/app_server.py``, which the benchmarks
share; they are re-exported here."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import pixelar
from benchmarks.app_server import AppServer, free_port, press_sample, step_sample_event  # noqa: F401  (re-exported)
from pixelar.checkpoints import run_metadata

ROOT = Path(__file__).resolve().parents[1]


def write_tiny_checkpoints(folder: Path) -> Path:
    """V1, V2 and V3 with 32 hidden units and V4 with 8 channels, trained for a few steps through pixelar's API
    (seconds)."""
    dataset = pixelar.load_dataset("mnist-5k")
    shapes = {"v1": {"hidden": 32}, "v2": {"hidden": 32}, "v3": {"hidden": 32}, "v4": {"channels": 8, "layers": 3, "head": 16}}
    for kind, shape in shapes.items():
        model = pixelar.build_model(kind, **shape)
        batch_size = 256 if model.batch_unit == "pixels" else 4
        config = pixelar.TrainConfig(steps=20, batch_size=batch_size, eval_every=0, eval_images=4, report_seconds=60)
        result = pixelar.train(model, dataset, config)
        metadata = run_metadata(model, result, config, dataset, result.held_out_nll, config.eval_images)
        pixelar.save_checkpoint(model, folder / f"{kind}.safetensors", **metadata)
    return folder


def write_bad_checkpoints(folder: Path) -> list[str]:
    """Files a student might copy in: a JSON-list header, NaN weights, a tiny file claiming a huge model."""
    (folder / "list-header.safetensors").write_bytes((8).to_bytes(8, "little") + b"[1, 2]  ")
    model = pixelar.build_model("v1", hidden=8)
    with torch.no_grad():
        model.fc2.weight.fill_(float("nan"))
    pixelar.save_checkpoint(model, folder / "nan-weights.safetensors")
    pixelar.save_checkpoint(pixelar.build_model("v1", hidden=4, k=2), folder / "huge-claim.safetensors")
    raw = (folder / "huge-claim.safetensors").read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    header["__metadata__"]["pixelar"] = header["__metadata__"]["pixelar"].replace('"hidden": 4', '"hidden": 8000')
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (folder / "huge-claim.safetensors").write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size :])
    return ["huge-claim.safetensors", "list-header.safetensors", "nan-weights.safetensors"]


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    return write_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def app_checkpoints(tiny_checkpoints, tmp_path_factory) -> Path:
    """The tiny V1-V3, the shipped V4 (so that "where it looked" spans a real whole past), and three bad files: the
    app must start, skip them visibly and serve the rest."""
    folder = tmp_path_factory.mktemp("app-checkpoints")
    tiny_mlps = [path for path in tiny_checkpoints.glob("*.safetensors") if path.stem != "v4"]
    for path in [*tiny_mlps, ROOT / "checkpoints" / "v4.safetensors"]:
        shutil.copy(path, folder / path.name)
    write_bad_checkpoints(folder)
    return folder


def serve(checkpoints: Path, folder: Path):
    """The app on ``checkpoints``, its data and log in ``folder``, up for as long as the generator is open."""
    server = AppServer(checkpoints, folder / "data", folder / "app.log")
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def app_server(app_checkpoints, tmp_path_factory):
    yield from serve(app_checkpoints, tmp_path_factory.mktemp("app"))
