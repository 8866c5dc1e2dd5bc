"""Sessions cost what they show: the real app, many Step-through sessions pressing Sample, and the server's memory.

Run: python -m benchmarks.soak [--sessions 200] [--minutes 10] [--parallel 8]

1. Starts ``python app.py`` with the shipped checkpoints and warms it up (a few sessions sample first).
2. ``--sessions`` new sessions (each its own session hash, like a browser tab) press Step through's Sample once,
   ``--parallel`` at a time, over the queue API the page uses; Gradio keeps each one's state (an hour).
   Prints the server's RSS before and after, and the growth per session kept.
3. ``--minutes`` (0: skip): those sessions keep pressing Sample, in turn, for that long; prints the RSS every
   ``--every`` seconds. A session's state is replaced by each press, so it should stay flat.

Target (issue 15): at most 1 MB per session kept, and flat under the soak.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from app_fixtures import AppServer, press_sample, step_sample_event  # noqa: E402  (the tests' way to run the app)
from benchmarks.common import machine  # noqa: E402

MB = 2**20


def rss(pid: int) -> float:
    """The process's resident memory in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200, help="sessions that press Sample once and are kept")
    parser.add_argument("--minutes", type=float, default=0, help="then press Sample in turn for this long (0: skip)")
    parser.add_argument("--parallel", type=int, default=8, help="presses in flight at once")
    parser.add_argument("--every", type=float, default=15, help="seconds between RSS lines in the soak")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        server = AppServer(ROOT / "checkpoints", Path(folder) / "data", Path(folder) / "app.log")
        try:
            server.wait_until_up()
            pid, url = server.process.pid, server.url
            fn_index, trigger = step_sample_event(url)
            with ThreadPoolExecutor(args.parallel) as pool:
                def press_all(sessions: list[str], first_seed: int) -> None:
                    list(pool.map(lambda i: press_sample(url, fn_index, trigger, sessions[i], first_seed + i),
                                  range(len(sessions))))

                press_all([uuid.uuid4().hex for _ in range(args.parallel * 2)], 10**6)  # warm-up: models, threads
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
        finally:
            server.stop()


if __name__ == "__main__":
    main()
