import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelar import load_checkpoint

pytestmark = pytest.mark.slow  # trains models or a classifier


REPO = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pixelar", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "v3.safetensors"
    run = cli("train", "--model", "v3", "--hidden", "32", "--steps", "30", "--batch-size", "128", "--eval-every", "10",
              "--final-eval-images", "10", "--out", str(path))
    assert run.returncode == 0, run.stderr
    assert "held-out NLL" in run.stdout and "saved" in run.stdout
    return path


def test_models_lists_the_seed_counts():
    run = cli("models")
    assert run.returncode == 0
    assert "1,554,448" in run.stdout and "1,621,776" in run.stdout and "1,609,920" in run.stdout


def test_train_writes_a_checkpoint_with_its_story(checkpoint):
    model = load_checkpoint(checkpoint)
    meta = model.metadata
    assert model.name == "v3" and model.config.hidden == 32
    assert meta["dataset"] == "mnist-5k" and meta["steps"] == 30 and meta["samples_seen"] == 30 * 128
    assert meta["device"] == "cpu" and 0 < meta["held_out_nll"] < 4.0 and meta["train_seconds"] > 0


def test_sample_writes_grid_gif_and_tokens(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELAR_PLAN", "fp32:16")  # two processes: pinned, so that both take the same path
    run = cli("sample", "--checkpoint", str(checkpoint), "--n", "6", "--digit", "7", "--seed", "0",
              "--out", str(tmp_path / "g.png"), "--gif", str(tmp_path / "a.gif"), "--npy", str(tmp_path / "t.npy"))
    assert run.returncode == 0, run.stderr
    tokens = np.load(tmp_path / "t.npy")
    assert tokens.shape == (6, 784) and tokens.max() < 16
    assert Image.open(tmp_path / "g.png").size[0] > 6 * 28
    assert Image.open(tmp_path / "a.gif").n_frames > 10
    again = tmp_path / "t2.npy"
    cli("sample", "--checkpoint", str(checkpoint), "--n", "6", "--digit", "7", "--seed", "0", "--out", str(tmp_path / "g2.png"), "--npy", str(again))
    assert np.array_equal(np.load(again), tokens)


def test_evaluate_prints_bits_per_pixel(checkpoint):
    run = cli("evaluate", "--checkpoint", str(checkpoint), "--images", "5")
    assert run.returncode == 0, run.stderr
    assert "bits per pixel" in run.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["sample", "--temperature", "0"], "temperature"),
        (["sample", "--temperature", "-1"], "temperature"),
        (["sample", "--temperature", "nan"], "temperature"),
        (["sample", "--digit", "10"], "digit"),
        (["sample", "--n", "0"], "number of samples"),
        (["train", "--model", "v9"], "invalid choice"),
        (["train", "--k", "1"], "K"),
        (["train", "--steps", "0"], "steps"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_write_nothing(checkpoint, tmp_path, args, words):
    if args[0] == "sample":
        args = [*args, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x.png")]
    else:
        args = [*args, "--out", str(tmp_path / "x.safetensors")]
    run = cli(*args, cwd=tmp_path)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], run.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_batch_beyond_the_models_memory_budget_is_refused(tmp_path):
    run = cli("train", "--model", "v4", "--batch-size", "8192", "--out", str(tmp_path / "x.safetensors"))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "batch size must be at most 60 images for this v4" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_checkpoints_are_refused(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 64)
    for name in ("none.safetensors", "bad.safetensors"):
        run = cli("sample", "--checkpoint", str(tmp_path / name), "--out", str(tmp_path / "x.png"))
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and name in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors"]
