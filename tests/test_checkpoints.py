import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import pixelar.checkpoints as ck
from pixelar import CheckpointError, load_checkpoint, read_metadata, sample, save_checkpoint
from helpers import tiny


def test_round_trip_rebuilds_the_model_with_its_metadata(tmp_path):
    model = tiny("v3", k=8, hidden=48)
    path = save_checkpoint(model, tmp_path / "m.safetensors", dataset="mnist-5k", steps=12, held_out_nll=1.5)
    loaded = load_checkpoint(path)
    assert loaded.name == "v3" and loaded.config == model.config
    assert loaded.metadata["dataset"] == "mnist-5k" and loaded.metadata["steps"] == 12
    assert read_metadata(path)["config"]["hidden"] == 48
    assert np.array_equal(sample(loaded, 2, seed=0).tokens, sample(model, 2, seed=0).tokens)
    assert path.read_bytes()[8:9] == b"{"  # a safetensors JSON header, no pickle


def test_saving_replaces_atomically(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_checkpoint(tiny("v1"), path, steps=1)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        open(args[1], "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", broken)
    with pytest.raises(OSError):
        save_checkpoint(tiny("v2"), path, steps=2)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]


def bad_files(tmp_path):
    good = save_checkpoint(tiny("v2"), tmp_path / "good.safetensors", steps=1).read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.safetensors").write_bytes(os.urandom(5000))
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x04\x95" + os.urandom(100))
    save_file({"w": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    other = tiny("v2", hidden=16)
    save_checkpoint(other, tmp_path / "mismatch.safetensors")
    mismatch = tmp_path / "mismatch.safetensors"  # metadata says hidden 64, weights are hidden 16
    raw = mismatch.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    info = json.loads(header["__metadata__"]["pixelar"])
    info["config"]["hidden"] = 64
    header["__metadata__"]["pixelar"] = json.dumps(info)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    mismatch.write_bytes(len(new).to_bytes(8, "little") + new + raw[8 + size :])
    return ["truncated.safetensors", "garbage.safetensors", "empty.safetensors", "pickle.pt", "foreign.safetensors", "mismatch.safetensors", "missing.safetensors"]


def test_bad_files_give_one_clear_error_and_change_nothing(tmp_path):
    names = bad_files(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    messages = {}
    for name in names:
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(tmp_path / name)
        messages[name] = str(error.value)
        assert name in messages[name]
    assert "no checkpoint" in messages["missing.safetensors"]
    assert "not a pixelar checkpoint" in messages["foreign.safetensors"]
    assert "do not match" in messages["mismatch.safetensors"]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
