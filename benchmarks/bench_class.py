"""A class on one server: the real app, one user training in the browser, then N users asking for digits at once.

Run: python -m benchmarks.bench_class [--users 30] [--waiting 30] [--no-training]

1. Starts ``python app.py`` on a free port with the shipped checkpoints.
2. One user opens the app in headless Chromium, goes to Train and presses Start with the default preset, the way a
   user does, and waits until the run reports its first progress. ``--waiting`` more pages press Start too and
   wait in the training line, asking for their turn every 2 s as the tab's timer does; they are HTTP clients of
   the queue API the page uses, not Chromium pages, which would take the server's cores on a small machine.
3. N gradio_client users each call ``/generate`` for 16 V3 samples at the same moment (each with its own seed).
4. Prints the median, p90 and slowest latency, the failures, and the training's own rate before and during the load.

Targets on a 2-core machine: every one of 30 answered within 5 s while the training runs; 0 failures with 100;
the same with 30 more runs waiting in line (issue 15: a line holds no thread).
"""
from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from gradio_client import Client

from benchmarks.app_server import AppServer, call_event

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CLIENT_WAIT_SECONDS = 300  # how long a user waits for an answer and its picture


def start_training(url: str, playwright):
    """Open the app, press Start in the Train tab, and wait for the run's first progress line: (browser, page)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-start").click()
    page.wait_for_function(
        "() => /samples\\/s/.test(document.querySelector('#train-status')?.innerText || '')", timeout=180_000
    )
    return browser, page


class WaitingPage(threading.Thread):
    """A page in the training line, as the Train tab runs it but over the queue API (thirty Chromium pages would
    take this machine's two cores from the server): press Start, ask for the run's turn, then ask again every
    ``POLL_SECONDS`` (the tab's timer) until stopped. ``status``: the last status line it was sent."""

    POLL_SECONDS = 2.0

    def __init__(self, url: str, events: dict):
        super().__init__(daemon=True)
        self.url, self.events, self.session = url, events, uuid.uuid4().hex[:11]
        self.status, self.error, self.stopped = "", None, threading.Event()

    def run(self) -> None:
        try:
            start, first_turn, next_turn = (self.events[name] for name in ("start", "first_turn", "next_turn"))
            call_event(self.url, *start, self.session, list(self.events["start_values"]))
            self.status = str(call_event(self.url, *first_turn, self.session, [None, None])[0])
            while not self.stopped.wait(self.POLL_SECONDS):
                self.status = str(call_event(self.url, *next_turn, self.session, [None, None])[0])
        except Exception as error:  # a benchmark reports failures of any kind
            self.error = f"{type(error).__name__}: {error}"[:200]


def train_events(url: str) -> dict:
    """From the page's config: Start's event and its default inputs, the run that follows it, and the timer's ask
    for a turn, each as (fn_index, trigger id)."""
    config = httpx.get(url + "config", timeout=30).json()
    components = {c["id"]: c for c in config["components"]}
    button = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "train-start")
    start = next(d for d in config["dependencies"] if [button, "click"] in d["targets"])
    first_turn = next(d for d in config["dependencies"] if d.get("trigger_after") == start["id"])
    next_turn = next(d for d in config["dependencies"]
                     if d["inputs"] == first_turn["inputs"] and any(event == "tick" for _, event in d["targets"]))
    return {
        "start": (start["id"], button), "first_turn": (first_turn["id"], None),
        "next_turn": (next_turn["id"], next(target for target, event in next_turn["targets"] if event == "tick")),
        "start_values": [components[i].get("props", {}).get("value") for i in start["inputs"]],
    }


def training_rate(page) -> float | None:
    """The samples/s the Train tab reports now."""
    text = page.locator("#train-status").inner_text()
    found = re.findall(r"([\d,]+) samples/s", text)
    return float(found[-1].replace(",", "")) if found else None


def class_asks(url: str, users: int, n: int) -> tuple[list[float], list[str]]:
    """``users`` clients call /generate at the same moment: (latencies of the answered, errors). Each waits for its
    answer and its picture as a browser does: up to ``CLIENT_WAIT_SECONDS`` (gradio_client's own limit is 5 s a read,
    which a busy server's picture download can exceed after the answer has been sent)."""
    clients = [Client(url, verbose=False, httpx_kwargs={"timeout": CLIENT_WAIT_SECONDS}) for _ in range(users)]
    latencies, errors = [], []
    start = threading.Barrier(users)
    lock = threading.Lock()

    def user(i: int, client: Client) -> None:
        start.wait()
        began = time.perf_counter()
        try:
            client.predict("v3", i % 10, 1.0, n, i, api_name="/generate")
            with lock:
                latencies.append(time.perf_counter() - began)
        except Exception as error:  # a benchmark counts failures of any kind
            with lock:
                errors.append(f"{type(error).__name__}: {error}"[:200])

    threads = [threading.Thread(target=user, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    return sorted(latencies), errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30, help="users asking at once (default 30)")
    parser.add_argument("--samples", type=int, default=16, help="V3 samples each user asks for (default 16)")
    parser.add_argument("--no-training", action="store_true", help="skip the training user")
    parser.add_argument("--waiting", type=int, default=0, help="pages that press Start and wait in line (default 0)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from benchmarks.common import machine

    folder = Path(tempfile.mkdtemp(prefix="bench-class-"))
    server = AppServer(ROOT / "checkpoints", folder / "data", folder / "app.log")
    browser = None
    try:
        server.wait_until_up()
        Client(server.url, verbose=False).predict("v3", 0, 1.0, 1, 0, api_name="/generate")  # load the model once
        with sync_playwright() as playwright:
            rate_before = None
            if not args.no_training:
                browser, page = start_training(server.url, playwright)
                events = train_events(server.url)
                waiting = [WaitingPage(server.url, events) for _ in range(args.waiting)]
                for waiter in waiting:
                    waiter.start()
                time.sleep(3 + WaitingPage.POLL_SECONDS)
                in_line = sum("ahead of yours" in waiter.status for waiter in waiting)
                rate_before = training_rate(page)
            latencies, errors = class_asks(server.url, args.users, args.samples)
            rate_during = None if args.no_training else training_rate(page)
            if not args.no_training:
                still = sum("ahead of yours" in waiter.status for waiter in waiting)
                for waiter in waiting:
                    waiter.stopped.set()
            if browser is not None:
                page.locator("#train-stop").click()
                browser.close()
    finally:
        server.stop()

    print(f"machine: {machine()}")
    scene = "while one user trains" if not args.no_training else "with nobody training"
    if args.waiting and not args.no_training:
        scene += f" and {args.waiting} more wait in the training line"
    print(f"{args.users} users x {args.samples} V3 samples at once, {scene}:")
    if latencies:
        p90 = latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))]
        print(f"  answered {len(latencies)}: median {statistics.median(latencies):.2f} s, p90 {p90:.2f} s, slowest {latencies[-1]:.2f} s")
    print(f"  failures: {len(errors)}")
    runs = re.findall(r"merged run: (\d+) requests, (\d+) images, \d+ threads, ([\d.]+) s", server.output())
    print(f"  the server's merged runs: {', '.join(f'{r} requests / {i} images in {s} s' for r, i, s in runs[1:])}")
    for error in errors[:5]:
        print(f"    {error}")
    if args.waiting and not args.no_training:
        print(f"  pages told their place in line before the class asked: {in_line} of {args.waiting}; after: {still}")
        errors_in_line = [waiter.error for waiter in waiting if waiter.error]
        print(f"  pages in line that failed: {len(errors_in_line)}" + (f" ({errors_in_line[0]})" if errors_in_line else ""))
    if rate_before is not None:
        print(f"  training: {rate_before:,.0f} samples/s before the class asked, {rate_during or 0:,.0f} samples/s just after")


if __name__ == "__main__":
    main()
