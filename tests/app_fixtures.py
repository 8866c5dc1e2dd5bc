"""Fixtures for the app's tests: tiny real checkpoints and the real app (``python app.py``) in a subprocess."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import pixelar

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 120  # the CPUs may be busy; Gradio and torch import slowly then


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_tiny_checkpoints(folder: Path) -> Path:
    """V1, V2 and V3 with 32 hidden units, trained for a few steps through pixelar's API (seconds)."""
    dataset = pixelar.load_dataset("mnist-5k")
    for kind in ("v1", "v2", "v3"):
        model = pixelar.build_model(kind, hidden=32)
        config = pixelar.TrainConfig(steps=20, batch_size=256, eval_every=0, eval_images=4, report_seconds=60)
        result = pixelar.train(model, dataset, config)
        pixelar.save_checkpoint(
            model, folder / f"{kind}.safetensors", dataset=dataset.name, class_names=list(dataset.class_names),
            steps=result.steps, samples_seen=result.samples_seen, train_seconds=round(result.seconds, 1),
            device=result.device, held_out_nll=round(result.held_out_nll, 4),
        )
    return folder


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


@pytest.fixture(scope="session")
def app_server(tiny_checkpoints, tmp_path_factory):
    folder = tmp_path_factory.mktemp("app")
    server = AppServer(tiny_checkpoints, folder / "data", folder / "app.log")
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()
