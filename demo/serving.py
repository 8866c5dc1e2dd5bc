"""Serving: every sample the tabs draw goes through ``sample`` or ``sample_each`` here.

Requests that arrive together, from any user and any tab, are merged into shared runs of the core sampler
(``pixelar.sampling.sample_many``) on one worker thread: 30 students asking for 16 digits each become one run of
480 images instead of 30 runs fighting over two cores. Every user still gets exactly the images their seed
gives when they are alone (the core guarantees it; ``tests/test_serving.py`` checks it under load).

Threads: each worker computes with one torch thread (the process's count, set once in ``app.main``), and so does a
training run (``demo/training.py``). A merged
run's tiles are independent, so when nobody trains the run is shared by one worker per core (``workers``), with
the same result as one worker; while a run trains, it keeps its core and requests get the others. Requests also
go first: while a run computes, a training run waits between its steps (``Batcher.idle``; at most 2 s a step, so
training never stops), because two busy threads in one process slowed a class's batch 2x (5.3 vs 2.6 s for 480
digits).

The step player's "where it looked" maps (``influence``) are one forward and backward pass over one image
(~35-40 ms): they run on the asking request's thread, one at a time after any sampling run in progress, and at
most ``INFLUENCE_LINE`` wait (their server function bypasses the queue; more are refused at once). After each map
the next one waits ``INFLUENCE_REST`` times as long as it took, so maps never take more than a quarter of one core,
however many pages ask: with 120 callers asking every second, one image from ``/generate`` took 1.3x its
time alone (``benchmarks/soak.py``; the audit measured 7.5x before the line and this rest).

The app builds one ``Batcher`` (``app.build_app``) and hands it to every tab; tests build their own.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

import pixelar
from pixelar.sampling import Request, sample_many

log = logging.getLogger(__name__)

WINDOW_SECONDS = 0.25  # after the first request arrives, wait this long for others to join its run
MAX_IMAGES_PER_RUN = 512  # larger merged runs are split, so the first users are answered sooner
TRAINING_THREAD = "pixelar-training"  # the name of a training run's thread (demo/training.py)
INFLUENCE_LINE = 4  # "where it looked" asks computing or waiting at once; more are told the server is busy
YIELD_SECONDS = 2.0  # the longest a map waits for a sampling run in progress: samples go first
INFLUENCE_REST = 3.0  # after a map that took c seconds, the next starts c x this later: maps get <= 1/4 of a core


def workers() -> int:
    """Threads a merged run may use: one per core, less one while a training run holds its core."""
    training = any(t.name == TRAINING_THREAD and t.is_alive() for t in threading.enumerate())
    return max(1, (os.cpu_count() or 1) - training)


@dataclass
class Job:
    """One request waiting for its run: the model, its checked arguments, and where its answer goes."""

    model: torch.nn.Module
    request: Request
    precision: str
    done: threading.Event = field(default_factory=threading.Event)
    trace: pixelar.Trace | None = None
    error: Exception | None = None


class Busy(Exception):
    """Too many maps asked for at once: the ask is refused at once, holding no server thread."""


class Batcher:
    """Collects jobs from any number of threads and runs them in merged batches on its own worker thread; and runs
    "where it looked" maps one at a time, after the run in progress (``influence``)."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS, max_images: int = MAX_IMAGES_PER_RUN):
        self.window_seconds, self.max_images = window_seconds, max_images
        self.runs = 0  # merged runs so far (for tests and the log)
        self.idle = threading.Event()  # cleared while a run computes: a training run waits for it between steps
        self.idle.set()
        self._jobs: queue.Queue[Job] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._influence_line = threading.BoundedSemaphore(INFLUENCE_LINE)
        self._influence_lock = threading.Lock()
        self._influence_rested_at = 0.0  # time.monotonic() from which the next map may start

    def sample(self, model, **kwargs) -> pixelar.Trace:
        """``pixelar.sample(model, **kwargs)``, merged with whatever other requests arrive at the same time."""
        return self.wait(self.submit(model, **kwargs))

    def sample_each(self, model, asks: list[dict]) -> list[pixelar.Trace]:
        """Several samples of one model at once (a temperature strip, a what-if pair): one merged run."""
        jobs = [self.submit(model, **ask) for ask in asks]
        return [self.wait(job) for job in jobs]

    def influence(self, model, tokens, label: int, step: int) -> np.ndarray:
        """``pixelar.influence(model, tokens, label, step)``: one at a time, after the sampling run in progress;
        ``Busy`` when ``INFLUENCE_LINE`` asks are already in line (a page that asks 120 times at once cannot hold
        the server's threads, so it cannot slow anyone's samples)."""
        if not self._influence_line.acquire(blocking=False):
            raise Busy("The server is busy: pause again in a moment to see where it looked.")
        try:
            with self._influence_lock:
                time.sleep(max(0.0, self._influence_rested_at - time.monotonic()))
                self.idle.wait(YIELD_SECONDS)
                began = time.monotonic()
                try:
                    return pixelar.influence(model, tokens, label, step)
                finally:
                    ended = time.monotonic()
                    self._influence_rested_at = ended + INFLUENCE_REST * (ended - began)
        finally:
            self._influence_line.release()

    def submit(self, model, precision: str = "auto", **kwargs) -> Job:
        """Check the arguments here, in the caller's thread (a bad one raises at once), and queue the job."""
        job = Job(model, Request.of(model, **kwargs), precision)
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="pixelar-sampler", daemon=True)
                self._worker.start()
        self._jobs.put(job)
        return job

    @staticmethod
    def wait(job: Job) -> pixelar.Trace:
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.trace

    def _work(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            deadline = time.monotonic() + self.window_seconds
            while (left := deadline - time.monotonic()) > 0:
                try:
                    jobs.append(self._jobs.get(timeout=left))
                except queue.Empty:
                    break
            while not self._jobs.empty():  # everything already waiting joins too
                jobs.append(self._jobs.get_nowait())
            for run in self._runs(jobs):
                self._run(run)

    def _runs(self, jobs: list[Job]) -> list[list[Job]]:
        """Jobs grouped by model and precision, in arrival order, each group cut into runs of at most
        ``max_images`` images (a larger single request runs alone)."""
        groups: dict[tuple[int, str], list[Job]] = {}
        for job in jobs:
            groups.setdefault((id(job.model), job.precision), []).append(job)
        runs = []
        for group in groups.values():
            run, size = [], 0
            for job in group:
                if run and size + job.request.n > self.max_images:
                    runs.append(run)
                    run, size = [], 0
                run.append(job)
                size += job.request.n
            runs.append(run)
        return runs

    def _run(self, jobs: list[Job]) -> None:
        self.idle.clear()
        began = time.perf_counter()
        try:
            threads = workers()
            traces = sample_many(jobs[0].model, [job.request for job in jobs], jobs[0].precision, threads)
            log.info("merged run: %d requests, %d images, %d threads, %.2f s", len(jobs),
                     sum(j.request.n for j in jobs), threads, time.perf_counter() - began)
            for job, trace in zip(jobs, traces):
                job.trace = trace
        except Exception as error:  # handed to every caller of the run; the worker goes on
            log.exception("a merged sampling run failed")
            for job in jobs:
                job.error = error
        finally:
            self.runs += 1
            if self._jobs.empty():
                self.idle.set()
            for job in jobs:
                job.done.set()

