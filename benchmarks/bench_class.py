"""A class on one server: the real app, one user training in the browser, then N users asking for digits at once.

Run: python -m benchmarks.bench_class [--users 30] [--waiting 30] [--no-training]

1. Starts ``python app.py`` on a free port with the shipped checkpoints.
2. One user opens the app in headless Chromium, goes to Train and presses Start with the default preset, the way a
   user does, and waits until the run reports its first progress. ``--waiting`` more pages press Start too and
   wait in the training line (each page asks for its turn every few seconds, as a real one does).
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
from pathlib import Path

from gradio_client import Client

from benchmarks.app_server import AppServer

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


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


def join_line(browser, url: str) -> object:
    """A page that presses Start while another run trains, and waits until it reads that it is in line."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="Train").click(timeout=300_000)  # the page's own load events come first
    page.locator("#train-start").click(timeout=300_000)
    page.wait_for_function(
        "() => /ahead of yours/.test(document.querySelector('#train-status')?.innerText || '')", timeout=180_000
    )
    return page


def training_rate(page) -> float | None:
    """The samples/s the Train tab reports now."""
    text = page.locator("#train-status").inner_text()
    found = re.findall(r"([\d,]+) samples/s", text)
    return float(found[-1].replace(",", "")) if found else None


def class_asks(url: str, users: int, n: int) -> tuple[list[float], list[str]]:
    """``users`` clients call /generate at the same moment: (latencies of the answered, errors)."""
    clients = [Client(url, verbose=False) for _ in range(users)]
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
                waiting = [join_line(browser, server.url) for _ in range(args.waiting)]
                time.sleep(3)
                rate_before = training_rate(page)
            latencies, errors = class_asks(server.url, args.users, args.samples)
            rate_during = None if args.no_training else training_rate(page)
            if not args.no_training:
                lines = [p.locator("#train-status").inner_text() for p in waiting]
                still = sum("ahead of yours" in line for line in lines)
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
        print(f"  pages still told their place in line after the class asked: {still} of {args.waiting}")
    if rate_before is not None:
        print(f"  training: {rate_before:,.0f} samples/s before the class asked, {rate_during or 0:,.0f} samples/s just after")


if __name__ == "__main__":
    main()
