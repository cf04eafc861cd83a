"""Run IO: atomic writes, state flattening, checksummed checkpoints."""
import json
import os

import numpy as np
import pytest

from intsim.app import runfolder as runio


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "f.json"
    runio.atomic_write_json(p, {"a": np.float32(1.5), "b": np.arange(3), "c": (1, 2)})
    runio.atomic_write_text(p.with_name("g.txt"), "x")
    assert json.loads(p.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": [1, 2]}
    assert sorted(os.listdir(p.parent)) == ["f.json", "g.txt"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    p = tmp_path / "f.json"
    runio.atomic_write_json(p, {"v": 1})

    class Boom:
        pass
    with pytest.raises(TypeError):
        runio.atomic_write_json(p, {"v": Boom()})
    assert json.loads(p.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["f.json"]


def _state():
    rng = np.random.default_rng(5)
    return {"w": rng.standard_normal((3, 4)).astype(np.float32),
            "rng": rng.bit_generator.state, "big": 2 ** 100, "nan": float("nan"),
            "t": (1, "a", None), "np": np.int64(7), "raw": b"\x00\xff",
            "nested": [{"x": np.zeros(2, np.uint8)}, 3.25], "ids": {1: "one", 2: "two"}}


def test_flatten_round_trip_exact():
    s = _state()
    skel, arrays = runio.flatten_state(s)
    json.dumps(skel)                      # the skeleton is pure JSON
    back = runio.unflatten_state(json.loads(json.dumps(skel)), arrays)
    assert np.array_equal(back["w"], s["w"]) and back["w"].dtype == np.float32
    assert back["rng"] == s["rng"] and back["big"] == 2 ** 100 and np.isnan(back["nan"])
    assert back["t"] == (1, "a", None) and back["np"] == 7 and back["np"].dtype == np.int64
    assert back["raw"] == b"\x00\xff" and back["ids"] == {1: "one", 2: "two"}
    assert back["nested"][0]["x"].dtype == np.uint8 and back["nested"][1] == 3.25


def test_checkpoint_round_trip_and_replacement(tmp_path):
    runio.save_checkpoint(tmp_path, 0, {"a": np.ones(3)})
    runio.save_checkpoint(tmp_path, 1, _state())
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-task001.npz"]
    task, st = runio.load_checkpoint(tmp_path)
    assert task == 1 and np.array_equal(st["w"], _state()["w"])


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "record"])
def test_corrupt_checkpoint_detected(tmp_path, damage):
    path = runio.save_checkpoint(tmp_path, 2, _state())
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "delete":
        path.unlink()
    else:
        (tmp_path / runio.CHECKPOINT).write_text("{not json")
    with pytest.raises(runio.CheckpointError):
        runio.load_checkpoint(tmp_path)


def test_no_checkpoint(tmp_path):
    assert not runio.has_checkpoint(tmp_path)
    with pytest.raises(runio.CheckpointError, match="missing"):
        runio.load_checkpoint(tmp_path)


def test_append_jsonl(tmp_path):
    p = tmp_path / "log.jsonl"
    runio.append_jsonl(p, {"a": np.float64(1.0)})
    runio.append_jsonl(p, {"b": [np.int32(2)]})
    assert [json.loads(l) for l in p.read_text().splitlines()] == [{"a": 1.0}, {"b": [2]}]
