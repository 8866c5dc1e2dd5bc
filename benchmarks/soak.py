"""Sessions cost what they show: the real app, many Step-through sessions pressing Sample, and the server's memory.

Run: python -m benchmarks.soak [--sessions 200] [--minutes 10] [--parallel 8]

1. Starts ``python app.py`` with the shipped checkpoints and warms it up (a few sessions sample first).
2. ``--sessions`` new sessions (each its own session hash, like a browser tab) press Step through's Sample once,
   ``--parallel`` at a time, over the queue API the page uses; Gradio keeps each one's state (an hour).
   Prints the server's RSS before and after, and the growth per session kept.
3. ``--minutes`` (0: skip): those sessions keep pressing Sample, in turn, for that long; prints the RSS every
   ``--every`` seconds. A session's state is replaced by each press, so it should stay flat.

4. ``--callers`` (0: skip): that many clients ask the player's "where it looked" server function (which bypasses
   the queue), each ``--pause`` seconds after its last answer, while one client times ``/generate`` for one V3
   image: alone, then under that load.

Targets (issue 15): at most 1 MB per session kept, flat under the soak; 120 callers slow ``/generate`` at most 2x.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from gradio_client import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.app_server import AppServer, press_sample, step_sample_event  # noqa: E402
from benchmarks.common import machine  # noqa: E402

MB = 2**20


def rss(pid: int) -> float:
    """The process's resident memory in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError("no VmRSS")


def generate_seconds(client: Client, repeats: int, limit: float = 120) -> float:
    """The median time of ``/generate`` for one V3 image; one not answered within ``limit`` seconds counts as inf."""
    times = []
    for seed in range(repeats):
        began = time.perf_counter()
        job = client.submit("v3", 3, 1.0, 1, seed, api_name="/generate")
        try:
            job.result(timeout=limit)
            times.append(time.perf_counter() - began)
        except TimeoutError:
            times.append(float("inf"))
    return statistics.median(times)


def influence_load(url: str, looks: str, callers: int, pause: float, stop: threading.Event) -> list[int]:
    """``callers`` threads ask "where it looked" until ``stop``, each ``pause`` seconds after its last answer, as
    paused players do: [maps received, busy answers, failed asks]."""
    config = httpx.get(url + "config", timeout=30).json()
    player = next(c["id"] for c in config["components"] if "where_it_looked" in c.get("props", {}).get("server_fns", []))
    counts, lock = [0, 0, 0], threading.Lock()

    def ask(caller: int) -> None:
        with httpx.Client(timeout=120) as http:
            while not stop.is_set():
                body = {"data": {"id": looks, "panel": 0, "step": 100 + caller % 600}, "component_id": player,
                        "fn_name": "where_it_looked", "session_hash": f"caller{caller}"}
                try:
                    answer = http.post(url + "gradio_api/component_server", json=body).json()
                    outcome = 0 if "map" in answer else 1
                except httpx.HTTPError:
                    outcome = 2
                with lock:
                    counts[outcome] += 1
                stop.wait(pause)

    for caller in range(callers):
        threading.Thread(target=ask, args=(caller,), daemon=True).start()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200, help="sessions that press Sample once and are kept")
    parser.add_argument("--minutes", type=float, default=0, help="then press Sample in turn for this long (0: skip)")
    parser.add_argument("--parallel", type=int, default=8, help="presses in flight at once")
    parser.add_argument("--every", type=float, default=15, help="seconds between RSS lines in the soak")
    parser.add_argument("--callers", type=int, default=0, help="clients asking where it looked at once (0: skip)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds each caller waits between asks")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        server = AppServer(ROOT / "checkpoints", Path(folder) / "data", Path(folder) / "app.log")
        try:
            server.wait_until_up()
            pid, url = server.process.pid, server.url
            fn_index, trigger = step_sample_event(url)
            with ThreadPoolExecutor(args.parallel) as pool:
                def press_all(sessions: list[str], first_seed: int) -> list:
                    return list(pool.map(lambda i: press_sample(url, fn_index, trigger, sessions[i], first_seed + i),
                                         range(len(sessions))))

                outputs = press_all([uuid.uuid4().hex for _ in range(args.parallel * 2)], 10**6)  # warm-up
                before, began = rss(pid), time.perf_counter()
                sessions = [uuid.uuid4().hex for _ in range(args.sessions)]
                press_all(sessions, 0)
                after = rss(pid)
                print(f"{args.sessions} sessions kept in {time.perf_counter() - began:.0f} s: RSS {before:.0f} -> "
                      f"{after:.0f} MB, {(after - before) / args.sessions:.2f} MB per session kept")
                if args.minutes > 0:
                    began, presses = time.monotonic(), 0
                    print(f"soak: {args.sessions} sessions press Sample in turn for {args.minutes:g} min")
                    print(f"  {0:6.0f} s  {0:6d} presses  RSS {rss(pid):.0f} MB")
                    while time.monotonic() - began < args.minutes * 60:
                        mark = time.monotonic()
                        while time.monotonic() - mark < args.every:
                            batch = [sessions[(presses + i) % len(sessions)] for i in range(args.parallel)]
                            press_all(batch, 10**7 + presses)
                            presses += len(batch)
                        print(f"  {time.monotonic() - began:6.0f} s  {presses:6d} presses  RSS {rss(pid):.0f} MB")
            if args.callers:
                client = Client(url, verbose=False)
                alone = generate_seconds(client, 3)
                stop = threading.Event()
                counts = influence_load(url, outputs[0][4]["looks"], args.callers, args.pause, stop)
                time.sleep(5)
                loaded = generate_seconds(client, 3)
                stop.set()
                print(f"/generate (1 V3 image), median of 3: {alone:.2f} s alone, {loaded:.2f} s with {args.callers} "
                      f"callers of where it looked, each every {args.pause:g} s ({loaded / alone:.1f}x; {counts[0]} maps "
                      f"sent, {counts[1]} busy, {counts[2]} failed)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
