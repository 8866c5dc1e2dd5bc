"""The app's request batcher: users asking at the same moment share runs, and each gets exactly what they get alone."""
import os
import threading
import time

import numpy as np
import pytest

import pixelar
from demo import serving
from demo.serving import Batcher
from helpers import tiny


def ask_together(batcher: Batcher, asks: list[tuple]) -> list:
    """Each (model, kwargs) asked from its own thread, all released at once; their traces or errors, in order."""
    results = [None] * len(asks)
    start = threading.Barrier(len(asks))

    def user(i, model, kwargs):
        start.wait()
        try:
            results[i] = batcher.wait(batcher.submit(model, **kwargs))
        except ValueError as error:
            results[i] = error

    threads = [threading.Thread(target=user, args=(i, *ask)) for i, ask in enumerate(asks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def test_users_asking_together_get_exactly_their_own_images():
    v1, v3 = tiny("v1", hidden=64), tiny("v3", hidden=64)
    asks = [
        (v3, dict(n=16, labels=3, temperature=1.0, seed=1)),
        (v3, dict(n=4, labels=[0, 1, 2, 3], temperature=0.7, seed=2, top_k=5)),
        (v1, dict(n=8, temperature=1.2, seed=3)),
        (v3, dict(n=1, labels=9, temperature=1.3, seed=1, top_p=0.8)),
        (v3, dict(n=30, labels=5, temperature=1.0, seed=4, precision="fp32")),
        (v1, dict(n=2, temperature=0.9, seed=5, prefix=[1, 2, 3])),
        (v3, dict(n=2, labels=12, seed=6)),  # a bad label: this user gets an error, the others their images
    ] * 2
    batcher = Batcher(window_seconds=0.5)
    results = ask_together(batcher, asks)
    for (model, kwargs), got in zip(asks, results):
        if kwargs.get("labels") == 12:
            assert isinstance(got, ValueError) and "class labels" in str(got)
            continue
        alone = pixelar.sample(model, **kwargs)
        assert np.array_equal(got.tokens, alone.tokens) and np.array_equal(got.logits, alone.logits), kwargs
    assert batcher.runs <= 4  # 12 good requests, 2 models x 2 precisions: merged, not one run each


def test_runs_are_split_at_the_size_limit_in_arrival_order():
    v3 = tiny("v3", hidden=16)
    batcher = Batcher(window_seconds=0.5, max_images=10)
    results = ask_together(batcher, [(v3, dict(n=6, seed=s)) for s in range(4)])
    assert [r.seed for r in results] == [0, 1, 2, 3]
    assert batcher.runs == 4  # 6 + 6 > 10: no two fit together


def test_a_failing_run_reaches_its_callers_and_the_worker_goes_on():
    v3 = tiny("v3", hidden=16)
    batcher = Batcher(window_seconds=0.0)
    job = batcher.submit(v3, n=1, seed=0, precision="bf16")
    job.precision = "fp16"  # past the check: the run itself fails
    with pytest.raises(ValueError, match="precision"):
        batcher.wait(job)
    assert batcher.wait(batcher.submit(v3, n=1, seed=0)).tokens.shape == (1, 784)


def test_a_merged_run_uses_every_core_unless_a_training_run_holds_one():
    alone = serving.workers()
    assert alone == max(1, os.cpu_count())
    hold = threading.Event()
    training = threading.Thread(target=hold.wait, name=serving.TRAINING_THREAD)
    training.start()
    try:
        assert serving.workers() == max(1, alone - 1)
    finally:
        hold.set()
        training.join()


def test_maps_asked_back_to_back_take_at_most_a_quarter_of_a_core():
    """However fast pages ask, each "where it looked" map is followed by a rest of ``INFLUENCE_REST`` times its
    length before the next starts, so maps cannot crowd out a class's samples (issue 15, point 7)."""
    batcher, model, tokens = Batcher(), tiny("v3", hidden=256), np.zeros(784, dtype=np.int64)

    def one_map() -> float:
        began = time.monotonic()
        pixelar.influence(model, tokens, 1, 500)
        return time.monotonic() - began

    compute = min(one_map() for _ in range(3))
    began = time.monotonic()
    for _ in range(6):
        batcher.influence(model, tokens, 1, 500)
    back_to_back = time.monotonic() - began  # without the rests about 6 maps' time, with them about 21
    assert back_to_back >= 0.5 * (6 + 5 * serving.INFLUENCE_REST) * compute
