"""``intsim train`` end to end through click's CliRunner on tiny in-memory data
(injected with RunHooks), including resume after an interruption and every
bad-input error (one stderr line, exit code 2, nothing written)."""
import json
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from intsim.app import runfolder as runio
from intsim.cli import main
from intsim.app.driver import RunHooks
from intsim.data import Dataset

FAST = ["--epochs", "1", "--batch-size", "32", "--memory", "12"]


def tiny_dataset(seed=0, n_cls=6, dim=12, ntr=24, nte=8):
    """HAR-like: n_cls Gaussian clusters of dim features, original labels 1..n_cls."""
    rng = np.random.default_rng(seed)
    centers = 2.0 * rng.standard_normal((n_cls, dim))

    def make(n):
        y = np.repeat(np.arange(1, n_cls + 1), n)
        X = centers[y - 1] + rng.standard_normal((len(y), dim))
        return X.astype(np.float32), y.astype(np.int64)
    Xtr, ytr = make(ntr)
    Xte, yte = make(nte)
    return Dataset(Xtr, ytr, Xte, yte, name="tiny",
                   users_train=np.zeros(len(ytr), np.int64), users_test=np.ones(len(yte), np.int64))


def train(args, hooks=None):
    hooks = hooks if hooks is not None else RunHooks(dataset=tiny_dataset())
    return CliRunner().invoke(main, ["train", *args], obj=hooks)


def _accuracies(res):
    return [(t["cnn"], t["nme"], t["per_class_cnn"], t["per_class_nme"], t["audit"])
            for t in res["tasks"]], res["summary"]


def test_train_writes_a_complete_run(tmp_path):
    out = tmp_path / "run"
    r = train(["--out", str(out), "-v", *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["method"] == "icarl" and cfg["arith"] == "hdqt" and cfg["epochs"] == 1
    assert cfg["lr"] > 0 and cfg["init_classes"] == 2 and cfg["model"] == "fcnet"
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["seed"] == 42467 and len(res["tasks"]) == 3
    t = res["tasks"][-1]
    assert t["classes_seen"] == 6 and 0 <= t["cnn"] <= 100 and t["nme"] is not None
    assert len(t["per_class_cnn"]) == 6 and "confusion_cnn" in t
    assert set(t["audit"]) >= {"classifier"} and "forward" in t["audit"]["classifier"]
    assert set(res["summary"]) == {"cnn", "nme"}
    assert {"avg", "last", "forgetting"} <= set(res["summary"]["cnn"])
    assert "numpy" in res["versions"] and res["timings"]["total_seconds"] > 0
    events = [json.loads(l)["event"] for l in (out / "log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and events[-1] == "end" and events.count("task") == 3
    assert events.count("epoch") == 3
    assert runio.load_checkpoint(out)[0] == 2
    # the human output: per-task lines, audit tables, final summary
    assert "task 3/3" in r.stdout and "audit after task 1" in r.stdout
    assert "CNN: average incremental" in r.stdout and "epoch 1/1" in r.stderr
    # the run can be reprinted and compared
    a = CliRunner().invoke(main, ["audit", str(out)])
    assert a.exit_code == 0 and "audit, all tasks" in a.stdout
    c = CliRunner().invoke(main, ["compare", str(out), str(out)])
    assert c.exit_code == 0 and "+0.00" in c.stdout


@pytest.mark.parametrize("where", ["mid_task", "task_end"])
def test_resume_after_interrupt_gives_identical_results(tmp_path, where):
    full = tmp_path / "full"
    assert train(["--out", str(full), *FAST]).exit_code == 0
    ref = json.loads((full / "results.json").read_text())

    part = tmp_path / "part"
    hooks = RunHooks(dataset=tiny_dataset())
    if where == "mid_task":                 # Ctrl-C in epoch 1 of task 2
        def on_epoch(ev):
            if ev["task"] == 1:
                raise KeyboardInterrupt
        hooks.on_epoch = on_epoch
    else:                                   # Ctrl-C right after task 2 is saved
        def on_task_end(t, rec):
            if t == 1:
                raise KeyboardInterrupt
        hooks.on_task_end = on_task_end
    r = train(["--out", str(part), *FAST], hooks)
    assert r.exit_code == 130 and "--resume" in r.stderr
    done = 1 if where == "mid_task" else 2
    assert runio.load_checkpoint(part)[0] == done - 1       # the last checkpoint is intact
    partial = json.loads((part / "results.json").read_text())
    assert not partial["complete"] and len(partial["tasks"]) == done

    r = train(["--out", str(part), "--resume"])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((part / "results.json").read_text())
    assert res["complete"]
    assert _accuracies(res) == _accuracies(ref)
    assert res["config"] == ref["config"]
    log = [json.loads(l) for l in (part / "log.jsonl").read_text().splitlines()]
    events = [e["event"] for e in log]
    assert "interrupted" in events and "resume" in events
    # each counted epoch once, as in the uninterrupted run's log (the retrained
    # task's first attempt is kept as epoch_discarded)
    def epochs(entries):
        return [(e["task"], e["stage"], e["epoch"]) for e in entries if e["event"] == "epoch"]
    ref_log = [json.loads(l) for l in (full / "log.jsonl").read_text().splitlines()]
    assert epochs(log) == epochs(ref_log)
    assert ("epoch_discarded" in events) == (where == "mid_task")


def test_config_file_with_command_line_override(tmp_path):
    conf = tmp_path / "setup.toml"
    conf.write_text('method = "lwf"\narith = "fp"\nepochs = 1\nbatch_size = 16\nseed = 7\n')
    out = tmp_path / "run"
    r = train(["--config", str(conf), "--method", "finetune", "--out", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert (cfg["method"], cfg["arith"], cfg["epochs"], cfg["seed"]) == ("finetune", "fp", 1, 7)
    res = json.loads((out / "results.json").read_text())
    assert res["tasks"][0]["nme"] is None and "nme" not in res["summary"]
    # FP has no quantized matmuls: an empty audit
    assert res["tasks"][0]["audit"] == {}
    # the written config.toml reproduces the run
    out2 = tmp_path / "again"
    r = train(["--config", str(out / "config.toml"), "--out", str(out2)])
    assert r.exit_code == 0
    res2 = json.loads((out2 / "results.json").read_text())
    assert _accuracies(res2) == _accuracies(res)


def test_output_off_a_terminal_is_one_line_per_task_unless_verbose(tmp_path):
    """stdout is not a terminal here: task lines, no epoch bars, no audit table per
    task (the summary's audit stays); -v prints them all."""
    r = train(["--out", str(tmp_path / "a"), *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    assert [l for l in r.stdout.splitlines() if l.startswith("task ")][2].startswith("task 3/3")
    assert "audit after task" not in r.stdout and "audit, all tasks" in r.stdout
    assert "epoch" not in r.stderr
    r = train(["--out", str(tmp_path / "b"), "-v", *FAST])
    assert "audit after task 3" in r.stdout and "epoch 1/1" in r.stderr
    r = train(["--out", str(tmp_path / "c"), "-q", "-v", *FAST])
    assert r.exit_code == 2 and "--quiet and --verbose exclude each other" in r.stderr


def test_jsonl_and_quiet_modes(tmp_path):
    FAST = ["--epochs", "1", "--batch-size", "32"]          # (LwF takes no --memory)
    r = train(["--out", str(tmp_path / "j"), "--jsonl", "--arith", "fp", "--method", "lwf", *FAST])
    assert r.exit_code == 0, r.stderr
    ev = [json.loads(l) for l in r.stdout.splitlines()]
    kinds = [e["event"] for e in ev]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("task") == 3
    assert "avg" in ev[-1]["summary"]["cnn"] and r.stderr == ""
    # epochs count from 1 (tasks from 0) on stdout as in log.jsonl
    logged = [json.loads(l) for l in (tmp_path / "j" / "log.jsonl").read_text().splitlines()]
    key = [(e["task"], e["epoch"]) for e in ev if e["event"] == "epoch"]
    assert key == [(e["task"], e["epoch"]) for e in logged if e["event"] == "epoch"]
    assert key[0] == (0, 1)
    r = train(["--out", str(tmp_path / "q"), "--quiet", "--arith", "fp", "--method", "lwf", *FAST])
    assert r.exit_code == 0 and r.stdout.strip() == str(tmp_path / "q") and r.stderr == ""


def test_ablation_flags_reach_the_arithmetic(tmp_path):
    out = tmp_path / "run"
    r = train(["--out", str(out), "--no-hadamard", "--grad-rounding", "nearest", "--fwd-clip", "1.0",
               "--acc-bits", "12", "--tile", "16", "--arith-opt", "bwd_tile=8", "--method", "bic",
               *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    a = res["run"]["arith"]
    for s in ("hadamard=False", "grad_rounding='nearest'", "fwd_clip=1.0", "acc_bits=12",
              "tile=16", "bwd_tile=8"):
        assert s in a
    assert res["run"]["acc_range"] == 2047 and "bias" in res["tasks"][-1]


def _snapshot(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.exists() else None


@pytest.mark.parametrize("args, words", [
    (["--dataset", "imagenet"], "'imagenet' is not one of"),
    (["--method", "ewc"], "'ewc' is not one of"),
    (["--bits", "9"], "bits=9 out of range"),
    (["--bits", "x"], "'x' is not a valid integer"),
    (["--acc-bits", "3"], "minimum acc_bits=4"),
    (["--dataset", "dsads"], "needs --data"),
    (["--dataset", "dsads", "--data", "/no/such/dsads"], "does not exist"),
    (["--arith-opt", "colour=red"], "unknown arith option 'colour'"),
    (["--config", "/no/such.toml"], "config file not found"),
    (["--quiet", "--jsonl"], "exclude each other"),
    (["--resume"], "--resume needs --out"),
    (["--epochs", "1", "--memory", "5"], "memory=5 is fewer exemplars than the 6 classes"),
    (["--epochs", "1", "--memory", "0"], "memory=0 is fewer exemplars than the 6 classes"),
    (["--arith", "fp", "--bits", "3", "--acc-bits", "6"],
     "--bits, --acc-bits do not apply to --arith fp"),
    (["--arith", "luq", "--no-hadamard"], "--hadamard does not apply to --arith luq"),
    (["--conv-bias"], "conv_bias does not apply to model fcnet"),
    (["--acc-mode", "wrap", "--acc-bits", "none"], "acc_mode=wrap needs a width"),
    (["--dataset", "synthetic", "--data", "/"], "dataset 'synthetic' reads no file"),
    (["--milestones", "5,3"], "milestones=[5, 3] must be in increasing order"),
    (["--dry-run", "--resume"], "--dry-run and --resume exclude each other"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, words):
    out = tmp_path / "run"
    r = train(["--out", str(out), *args] if "--resume" not in args else args)
    assert r.exit_code == 2, r.output + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("intsim: error:") and words in r.stderr
    assert not out.exists() and r.stdout == ""


def test_missing_data_file_is_one_line(tmp_path):
    d = tmp_path / "empty_dsads"
    d.mkdir()
    r = CliRunner().invoke(main, ["train", "--dataset", "dsads", "--data", str(d),
                                  "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "dsads" in r.stderr
    assert not (tmp_path / "run").exists()


def test_existing_run_and_corrupt_checkpoint_are_not_overwritten(tmp_path):
    out = tmp_path / "run"
    assert train(["--out", str(out), "--arith", "fp", *FAST]).exit_code == 0
    before = _snapshot(out)
    r = train(["--out", str(out), "--arith", "fp", *FAST])          # no --resume
    assert r.exit_code == 2 and "not empty" in r.stderr and _snapshot(out) == before
    r = train(["--out", str(out), "--resume", "--epochs", "3"])     # settings change
    assert r.exit_code == 2 and "--epochs" in r.stderr and _snapshot(out) == before
    res_before = (out / "results.json").read_bytes()
    r = train(["--out", str(out), "--resume"])                      # nothing left to do
    assert r.exit_code == 0 and "already complete" in r.stdout
    assert (out / "results.json").read_bytes() == res_before
    npz = next(out.glob("ckpt-task*.npz"))
    npz.write_bytes(npz.read_bytes()[:-10])                         # truncate
    before = _snapshot(out)
    r = train(["--out", str(out), "--resume"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "checksum" in r.stderr
    assert _snapshot(out) == before
    r = train(["--out", str(tmp_path / "nothing"), "--resume"])
    assert r.exit_code == 2 and "not found" in r.stderr and not (tmp_path / "nothing").exists()


def _write_hapt_561(root, rng, users=(1, 2, 3, 4, 5), classes=(1, 2, 3, 4), per=4):
    """Tiny HAPT in the official 561-feature layout (Train/, Test/ text files)."""
    rows, ys, us = [], [], []
    centers = {c: rng.standard_normal(561) for c in classes}
    for u in users:
        for c in classes:
            rows.append(centers[c] + 0.3 * rng.standard_normal((per, 561)))
            ys += [c] * per
            us += [u] * per
    X = np.concatenate(rows)
    half = len(X) // 2
    for sub, part, sl in (("Train", "train", slice(0, half)), ("Test", "test", slice(half, None))):
        (root / sub).mkdir(parents=True)
        np.savetxt(root / sub / f"X_{part}.txt", X[sl], fmt="%.6f")
        np.savetxt(root / sub / f"y_{part}.txt", np.array(ys)[sl], fmt="%d")
        np.savetxt(root / sub / f"subject_id_{part}.txt", np.array(us)[sl], fmt="%d")


def test_official_format_files_through_data_option(tmp_path):
    data = tmp_path / "hapt"
    _write_hapt_561(data, np.random.default_rng(3))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--data", str(data), "--arith", "fp", "--hidden", "16",
                                  "--out", str(out), *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["in_shape"] == [561] and res["run"]["num_tasks"] == 2
    assert sorted(res["run"]["class_order"]) == [1, 2, 3, 4]
    # a damaged file: one line naming it, exit 2, no run folder
    x = data / "Train" / "X_train.txt"
    x.write_text("\n".join(l.rsplit(" ", 1)[0] for l in x.read_text().splitlines()))
    r = CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "X_train.txt" in r.stderr
    assert not (tmp_path / "bad").exists()


def test_bad_value_in_config_file(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('method = "ewc"\n')
    r = train(["--config", str(conf), "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "unknown method 'ewc'" in r.stderr
    assert not (tmp_path / "run").exists()


def _write_idx(folder, rng, n_cls=4, per=6, side=28):
    """Tiny MNIST in the official IDX layout (uncompressed)."""
    import struct
    folder.mkdir()
    for stem in ("train", "t10k"):
        y = np.repeat(np.arange(n_cls), per).astype(np.uint8)
        X = (rng.integers(0, 60, (len(y), side, side)) + 40 * y[:, None, None]).astype(np.uint8)
        (folder / f"{stem}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, len(y), side, side) + X.tobytes())
        (folder / f"{stem}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, len(y)) + y.tobytes())


def test_mnist_idx_through_the_cli(tmp_path):
    data = tmp_path / "mnist"
    _write_idx(data, np.random.default_rng(1))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--dataset", "mnist", "--data", str(data), "--arith",
                                  "fp", "--hidden", "16", "--out", str(out), *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["in_shape"] == [784] and res["config"]["model"] == "fcnet"
    assert res["run"]["num_tasks"] == 2


def test_luq_run_records_its_forward_accumulator(tmp_path):
    out = tmp_path / "run"
    r = train(["--out", str(out), "--arith", "luq", "--method", "lwf", "--quiet", *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["arith"].startswith("LUQ(") and res["run"]["acc_range"] == 127
    fwd = res["tasks"][0]["audit"]["classifier"]["forward"]
    assert fwd["tiles"] > 0


# ------------------------------------------------ settings without effect, run folders

def test_unused_arith_settings_are_refused_from_a_file_and_written_as_comments(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('arith = "fp"\nbits = 3\n')
    out = tmp_path / "run"
    r = train(["--config", str(conf), "--out", str(out), *FAST])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and not out.exists()
    assert f"bits (in {conf}) does not apply to --arith fp" in r.stderr
    r = train(["--arith", "fp", "--out", str(out), *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    text = (out / "config.toml").read_text()
    assert "\n# bits = 4    # unused: --arith fp does not take it" in text
    assert "\nbits =" not in text and "fp" in tomllib.loads(text)["arith"]
    res = json.loads((out / "results.json").read_text())
    assert "bits" in res["run"]["unused_settings"] and "acc_bits" in res["run"]["unused_settings"]
    assert train(["--out", str(out), "--resume"]).exit_code == 0        # resumable as written
    again = tmp_path / "again"                                          # and a --config
    assert train(["--config", str(out / "config.toml"), "--out", str(again)]).exit_code == 0


def test_a_run_folder_is_locked_while_in_use(tmp_path):
    out = tmp_path / "run"
    assert train(["--out", str(out), "--arith", "fp", *FAST]).exit_code == 0
    before = _snapshot(out)
    with runio.RunLock(out):                       # another process writing it
        r = train(["--out", str(out), "--resume"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert f"run folder {out} is in use by another intsim process (pid " in r.stderr
    assert _snapshot(out) == before
    assert train(["--out", str(out), "--resume"]).exit_code == 0        # free again


def test_run_files_follow_the_umask(tmp_path):
    import os
    import stat
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert train(["--out", str(out), "--arith", "fp", *FAST]).exit_code == 0
    finally:
        os.umask(old)
    for p in out.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p.name


def test_unwritable_out_is_one_line(tmp_path, monkeypatch):
    import errno
    out = tmp_path / "run"
    write = runio.atomic_write_json

    def full(path, obj):
        if str(path).endswith("results.json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write(path, obj)
    monkeypatch.setattr(runio, "atomic_write_json", full)
    r = train(["--out", str(out), "--arith", "fp", "-q", *FAST])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert r.stderr == (f"intsim: error: cannot write {out / 'results.json'}: no space left on "
                        f"device; the checkpoint after task 1 in {out} is kept: free space, "
                        f"then continue with: intsim train --out {out} --resume\n")


@pytest.mark.parametrize("code, what", [(13, "permission denied"),
                                        (30, "read-only file system")])
def test_read_only_out_says_what_happened_and_mentions_no_checkpoint(tmp_path, monkeypatch,
                                                                    code, what):
    out = tmp_path / "run"

    def refuse(path, text):
        raise OSError(code, "refused", str(path))
    monkeypatch.setattr(runio, "atomic_write_text", refuse)      # config.toml, the first file
    r = train(["--out", str(out), "--arith", "fp", *FAST])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert r.stderr == (f"intsim: error: cannot write {out / 'config.toml'}: {what} (no task "
                        f"had finished; choose another --out)\n")


def test_mangled_checkpoint_is_one_line(tmp_path):
    out = tmp_path / "run"
    cut = RunHooks(dataset=tiny_dataset())

    def stop(t, rec):
        if t == 1:
            raise KeyboardInterrupt
    cut.on_task_end = stop
    r = train(["--out", str(out), "--arith", "fp", *FAST], hooks=cut)
    assert r.exit_code == 130
    rec = json.loads((out / "checkpoint.json").read_text())
    rec["state"]["cil"]["next_task"] = 7
    (out / "checkpoint.json").write_text(json.dumps(rec))
    r = train(["--out", str(out), "--resume"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "inconsistent" in r.stderr
    del rec["state"]["cil"]["next_task"]
    (out / "checkpoint.json").write_text(json.dumps(rec))
    r = train(["--out", str(out), "--resume"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "next_task" in r.stderr


def test_data_commands_fail_like_train():
    r = CliRunner().invoke(main, ["data", "info", "cifar100"])
    assert r.exit_code == 2 and r.stderr == ("intsim: error: cifar100 needs --data PATH: "
                                             "the python-version tar.gz or folder\n")
    r = CliRunner().invoke(main, ["data", "info", "imagenet"])
    assert r.exit_code == 2 and r.stderr.startswith("intsim: error: unknown dataset 'imagenet'")


def test_checksum_message_says_what_differs(tmp_path):
    out = tmp_path / "run"
    assert train(["--out", str(out), "--arith", "fp", *FAST]).exit_code == 0
    npz = next(out.glob("ckpt-task*.npz"))
    data = bytearray(npz.read_bytes())
    data[-1] ^= 0xFF                                   # same size, other contents
    npz.write_bytes(bytes(data))
    r = train(["--out", str(out), "--resume"])
    assert r.exit_code == 2 and "same size" in r.stderr and "other contents" in r.stderr


def test_short_schedule_trains_small_tasks_for_at_least_100_steps(tmp_path):
    """The default schedule trains each stage for at least 100 SGD steps: a first
    HAPT task of 2 classes (2 batches an epoch) would stay at the larger class
    for all of 15 epochs."""
    out = tmp_path / "run"
    r = train(["--out", str(out), "--arith", "fp", "--batch-size", "32", "--memory", "12"])
    assert r.exit_code == 0, r.output + r.stderr
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert (cfg["epochs"], cfg["min_steps"]) == (15, 100)
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    first = [e for e in log if e["event"] == "epoch" and e["task"] == 0]
    assert len(first) == 50 and first[-1]["epochs"] == 50          # 48 samples: 2 steps an epoch
    # an explicit --epochs is taken as given; the written config.toml repeats the run
    out2 = tmp_path / "again"
    r = train(["--config", str(out / "config.toml"), "--out", str(out2)])
    assert r.exit_code == 0
    assert _accuracies(json.loads((out2 / "results.json").read_text())) == \
        _accuracies(json.loads((out / "results.json").read_text()))


def test_resume_with_a_damaged_results_file_is_one_line_and_touches_nothing(tmp_path):
    run = tmp_path / "run"
    assert train(["--out", str(run), "--arith", "fp", *FAST]).exit_code == 0
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in run.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    (copy / "results.json").write_bytes((run / "results.json").read_bytes()[:300])
    before = _snapshot(copy)
    for _ in range(2):
        r = train(["--out", str(copy), "--resume"])
        assert r.exit_code == 2 and r.stderr.count("\n") == 1 and r.stdout == ""
        assert r.stderr.startswith(f"intsim: error: cannot resume: {copy / 'results.json'} is "
                                   f"damaged (") and "delete it and run --resume again" in r.stderr
        assert _snapshot(copy) == before                    # log.jsonl included
    (copy / "results.json").unlink()                        # as the message says
    r = train(["--out", str(copy), "--resume"])
    assert r.exit_code == 0, r.output + r.stderr
    assert _accuracies(json.loads((copy / "results.json").read_text())) == \
        _accuracies(json.loads((run / "results.json").read_text()))


def test_resume_of_a_run_without_a_finished_task_says_it_starts_over(tmp_path):
    out = tmp_path / "run"
    hooks = RunHooks(dataset=tiny_dataset())

    def stop(ev):
        raise KeyboardInterrupt
    hooks.on_epoch = stop
    assert train(["--out", str(out), "--arith", "fp", *FAST], hooks).exit_code == 130
    r = train(["--out", str(out), "--resume"])
    assert r.exit_code == 0, r.output + r.stderr
    assert "starting over from task 1 (no task had finished)" in r.stdout
    assert "resuming after task 0" not in r.stdout


def test_dry_run_prints_the_config_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    r = train(["--dry-run", "--out", str(out), "--arith", "luq", "--epochs", "3"])
    assert r.exit_code == 0, r.output + r.stderr
    cfg = tomllib.loads(r.stdout)
    assert (cfg["arith"], cfg["epochs"], cfg["lr"], cfg["memory"]) == ("luq", 3, 0.01, 200)
    assert "# tile = 32    # unused: --arith luq does not take it" in r.stdout
    assert r.stderr == "" and not out.exists() and list(tmp_path.iterdir()) == []
    conf = tmp_path / "c.toml"                  # the printed text is a config file that runs
    conf.write_text(r.stdout)
    r2 = train(["--config", str(conf), "--out", str(out), *FAST[2:]])
    assert r2.exit_code == 0, r2.output + r2.stderr
    r = train(["--dry-run", "--arith", "fp134", "--arith-opt", "act_format=11111110"])
    assert r.exit_code == 0, r.stderr
    assert tomllib.loads(r.stdout)["arith_options"]["act_format"] in (11111110, "11111110")


def test_settings_without_effect_are_warnings_and_the_run_runs(tmp_path):
    out = tmp_path / "run"
    r = train(["--out", str(out), "--method", "lwf", "--milestones", "1,5", *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    lines = r.stderr.splitlines()
    assert lines == [
        "intsim: warning: milestones 1, 5 have no effect: the LR decays after epoch m, and "
        "each task trains 1 epoch(s) (--epochs)",
        "intsim: warning: memory=12 has no effect: lwf keeps no exemplars (methods that do: "
        "icarl, bic, der, memo)"]
    assert json.loads((out / "results.json").read_text())["complete"]
    # no warning for what has an effect, and a refused run prints only its error
    r = train(["--out", str(tmp_path / "b"), "--milestones", "1", "--epochs", "2",
               "--batch-size", "32", "--memory", "12"])
    assert r.exit_code == 0 and "warning" not in r.stderr
    r = train(["--out", str(tmp_path / "c"), "--method", "lwf", "--memory", "12", "--bits", "9"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "bits=9" in r.stderr
    r = train(["--out", str(tmp_path / "d"), "--method", "icarl", "--milestones", "7",
               "--epochs", "1", "--memory", "5"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "memory=5" in r.stderr
