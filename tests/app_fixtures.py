"""Fixtures for the app's tests: tiny real checkpoints and the real app (``python app.py``) in a subprocess."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
import torch

import pixelar
from pixelar.checkpoints import run_metadata

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 120  # the CPUs may be busy; Gradio and torch import slowly then


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class AppServer:
    """``python app.py`` on a free port, with an empty data folder (downloads, if any, go there) and its output
    in a log file."""

    def __init__(self, checkpoints: Path, data_root: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "app.py"), "--port", str(self.port), "--checkpoints", str(checkpoints),
                 "--data-root", str(data_root)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"app.py did not answer within {STARTUP_SECONDS} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def step_sample_event(url: str) -> tuple[int, int]:
    """The fn_index of Step through's Sample, and the button's id (the event's trigger), from the page's config."""
    config = httpx.get(url + "config", timeout=30).json()
    button = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "step-sample")
    fn = next(d for d in config["dependencies"] if [button, "click"] in d["targets"])
    return fn["id"], button


def press_sample(url: str, fn_index: int, trigger: int, session: str, seed: int) -> list:
    """One press of Sample in one session, as the page makes it: join the queue, read the stream to the end; the
    event's outputs."""
    data = [None, "v3", 3, 1.0, 0, 1, seed, False]  # session state, model, digit, temperature, top-k, top-p, seed, new
    with httpx.Client(base_url=url + "gradio_api/", timeout=300) as http:
        http.post("queue/join", json={"data": data, "fn_index": fn_index, "trigger_id": trigger,
                                      "session_hash": session, "event_data": None}).raise_for_status()
        with http.stream("GET", "queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        if not message.get("success"):
                            raise RuntimeError(f"Sample failed: {message.get('output')}")
                        return message["output"]["data"]
    raise RuntimeError("the stream ended without an answer")


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
