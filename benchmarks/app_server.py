"""The real app (``python app.py``) in a subprocess, and one press of Step through's Sample over the queue API the
page uses: shared by the tests (``tests/app_fixtures.py``) and the benchmarks that load the app (``bench_class``,
``soak``)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 120  # the CPUs may be busy; Gradio and torch import slowly then


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``python app.py`` on a free port, with an empty data folder (downloads, if any, go there), an empty class
    board beside it, and its output in a log file."""

    def __init__(self, checkpoints: Path, data_root: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "app.py"), "--port", str(self.port), "--checkpoints", str(checkpoints),
                 "--data-root", str(data_root), "--data-dir", str(Path(data_root).parent / "board")],
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
    return call_event(url, fn_index, trigger, session, data)


def call_event(url: str, fn_index: int, trigger: int | None, session: str, data: list) -> list:
    """One event of one session, as the page runs it: join the queue, read the stream to the end; its outputs.
    A state input may be None: the server keeps each session's states."""
    with httpx.Client(base_url=url + "gradio_api/", timeout=300) as http:
        http.post("queue/join", json={"data": data, "fn_index": fn_index, "trigger_id": trigger,
                                      "session_hash": session, "event_data": None}).raise_for_status()
        with http.stream("GET", "queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        if not message.get("success"):
                            raise RuntimeError(f"event {fn_index} failed: {message.get('output')}")
                        return message["output"]["data"]
    raise RuntimeError("the stream ended without an answer")
