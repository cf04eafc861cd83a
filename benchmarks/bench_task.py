"""One class-incremental task, part by part, beside the training step.

CIFAR-10 in the official python format, synthetic (class-dependent images
written to a temporary folder and read back with load_dataset), ResNet-32 FP,
iCaRL with the CIFAR defaults (augmentation, memory, feature batch 64, test
batch 128), 1 epoch a task, 2 classes a task. Each of the first --tasks tasks
is timed part by part: the training epoch (augmentation, batching, the old
model's forward for KD, forward, backward, SGD), exemplar selection (the
herding feature pass over the task's training images, and the herding
algorithm itself), class means (a feature pass over every exemplar), the
frozen copy of the old model and evaluation (test logits and NME features).
Each part is printed per image beside a training step per image (batch 128,
forward + loss + backward + SGD) measured in the same run, and so are an
eval-mode forward (batch 64 and 128), augmentation, batch gathering and the
herding algorithm at the full CIFAR-10 size (5,000 features of one class,
m = 1,000, as in task 0), timed interleaved with the step
(benchutil.best_times). The threads are the run's defaults; set
NUMBA_NUM_THREADS / OPENBLAS_NUM_THREADS to pin them (the table says which).

Default: 1,000 training and 200 test images per class (2,000 images a task;
memory scaled to 400); --full: 5,000 and 1,000 (10,000 a task, memory 2,000,
as the real CIFAR-10). Run: make bench-task  (FULL=1 for --full).
"""
import argparse
import copy
import os
import pickle
import sys
import tempfile
import time

from intsim.kernels.runtime import configure_runtime

configure_runtime()     # intsim's process setup, before NumPy loads (as the intsim command)
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import best_times, print_table, write_table  # noqa: E402

import intsim  # noqa: E402
from intsim import nn  # noqa: E402
from intsim.cil import CILConfig  # noqa: E402
from intsim.cil import memory as cil_memory  # noqa: E402
from intsim.cil.runner import make_learner  # noqa: E402
from intsim.data import TaskStream, augment_cifar, iterate_batches, load_dataset  # noqa: E402
from intsim.models import resnet32  # noqa: E402

SEED = 42467


def write_cifar10(root, per_class_train, per_class_test, seed=0):
    """Official-format CIFAR-10 folder (data_batch_1..5, test_batch, batches.meta)
    of class-dependent synthetic images: a random colour pattern per class plus
    noise, so that training, herding and NME have real structure."""
    rng = np.random.default_rng(seed)
    d = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(d, exist_ok=True)
    centers = rng.integers(40, 216, (10, 3072))

    def images(n):
        y = np.repeat(np.arange(10), n)[rng.permutation(10 * n)]
        x = np.clip(centers[y] + rng.normal(0, 40, (y.size, 3072)), 0, 255).astype(np.uint8)
        return x, y

    def dump(name, obj):
        with open(os.path.join(d, name), "wb") as f:
            pickle.dump(obj, f, protocol=2)

    x, y = images(per_class_train)
    for i, part in enumerate(np.array_split(np.arange(y.size), 5)):
        dump(f"data_batch_{i + 1}", {b"data": x[part], b"labels": y[part].tolist()})
    x, y = images(per_class_test)
    dump("test_batch", {b"data": x, b"labels": y.tolist()})
    dump("batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return root


class Timer:
    """Accumulates wall time per part name; wrap(fn, name) times every call."""

    def __init__(self):
        self.t = {}

    def wrap(self, fn, name):
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.t[name] = self.t.get(name, 0.0) + time.perf_counter() - t0
        return timed

    def pop(self):
        t, self.t = self.t, {}
        return t


def time_tasks(stream, cfg, tasks, arith):
    """Run the first ``tasks`` tasks as run_cil does (same rng spawning) with
    every part timed. Returns (per-task list of (task, part seconds, counts), learner)."""
    model_rng, learner_rng = np.random.default_rng(SEED).spawn(2)
    model = resnet32(0, arith, model_rng)
    learner = make_learner(model, cfg, learner_rng)
    learner.num_tasks = stream.num_tasks
    timer = Timer()
    parts = [("_select_exemplars", "exemplar selection"), ("_update_class_means", "class means"),
             ("_build_memory", "exemplars + class means"), ("_freeze_copy", "old model copy")]
    for attr, name in parts:
        if hasattr(learner, attr):   # an older learner has _build_memory only
            setattr(learner, attr, timer.wrap(getattr(learner, attr), name))
    herding = cil_memory.herding
    cil_memory.herding = timer.wrap(herding, "herding algorithm")
    out = []
    try:
        for t in range(tasks):
            task = stream.task(t)
            model.reset_audit()
            n_train = len(learner._train_data(task)[1])   # with the replayed exemplars
            t0 = time.perf_counter()
            learner.incremental_train(task)
            t1 = time.perf_counter()
            learner.after_task(task)
            t2 = time.perf_counter()
            ev = learner.eval_task(task)
            t3 = time.perf_counter()
            sec = timer.pop()
            sec.update({"training epoch": t1 - t0, "after_task": t2 - t1, "evaluation": t3 - t2,
                        "task total": t3 - t0})
            counts = {"training epoch": n_train, "exemplar selection": len(task.y_train),
                      "class means": len(learner.memory), "evaluation": len(task.y_test),
                      "herding algorithm": len(task.y_train)}
            counts["exemplars + class means"] = counts["exemplar selection"] + len(learner.memory)
            out.append((t, sec, counts, ev))
            print(f"task {t}: " + ", ".join(f"{k} {v:.1f} s" for k, v in sec.items()), flush=True)
    finally:
        cil_memory.herding = herding
    return out, learner


def reference_costs(learner, X, y, rounds):
    """Per-image seconds of a training step (batch 128), eval-mode forwards at
    the feature and test batch sizes, augmentation and batch gathering, interleaved."""
    cfg = learner.config
    model = copy.deepcopy(learner.model)
    opt = intsim.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)
    B, fb, tb = cfg.batch_size, cfg.feature_batch_size, cfg.test_batch_size
    rng = np.random.default_rng(0)
    xb, yb = X[:B], y[:B]

    def step():
        model.train()
        _, g = nn.cross_entropy(model.forward(xb), yb)
        opt.zero_grad()
        model.backward(g)
        opt.step()

    def fwd(b):
        def run():
            model.eval()
            model.features(X[:b])
        return run

    # one CIFAR-10 class at full size in task 0: 5,000 images, m = 2,000 // 2
    feats = cil_memory.l2_normalize(np.abs(rng.normal(size=(5000, 64))))
    fns = {"training step (batch %d)" % B: step,
           "eval forward, batch %d (features)" % fb: fwd(fb),
           "eval forward, batch %d (test)" % tb: fwd(tb),
           "augment_cifar (batch %d)" % B: lambda: augment_cifar(xb, rng),
           "batch gather (shuffled, batch %d)" % B:
               lambda: next(iterate_batches(X, y, B, rng=rng)),
           "herding algorithm, a class of 5,000 x 64 features, m = 1,000":
               lambda: cil_memory.herding(feats, 1000)}
    best = best_times(fns, rounds=rounds)
    sizes = [B, fb, tb, B, B, 5000]
    return {k: best[k] / n for k, n in zip(fns, sizes)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true",
                    help="5,000 training / 1,000 test images per class (the real CIFAR-10 size)")
    ap.add_argument("--per-class", type=int, default=None,
                    help="training images per class (default 1,000; --full 5,000)")
    ap.add_argument("--tasks", type=int, default=2, help="tasks to time (default 2)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds of the interleaved reference timing (default 5)")
    ap.add_argument("--name", default=None, help="results table name (default task / task_full)")
    args = ap.parse_args(argv)
    per_class = args.per_class or (5000 if args.full else 1000)
    per_test = per_class // 5
    memory = 2000 * per_class // 5000
    name = args.name or ("task_full" if args.full else "task")
    root = tempfile.mkdtemp(prefix="bench_task_")
    write_cifar10(root, per_class, per_test, seed=SEED)
    ds = load_dataset("cifar10", root)
    stream = TaskStream(ds, 2, 2, seed=SEED)
    cfg = CILConfig.for_dataset("cifar100", "icarl", init_classes=2, inc_classes=2, epochs=1,
                                memory=memory).replace(dataset="cifar10")
    threads = "Numba %s, OpenBLAS %s" % (os.environ.get("NUMBA_NUM_THREADS", "default"),
                                         os.environ.get("OPENBLAS_NUM_THREADS", "default"))
    print(f"CIFAR-10 synthetic: {per_class} train / {per_test} test images per class, "
          f"memory {memory}, ResNet-32 FP, iCaRL, 1 epoch a task; threads: {threads}",
          flush=True)
    per_task, learner = time_tasks(stream, cfg, args.tasks, intsim.FP())
    ref = reference_costs(learner, ds.X_train, np.asarray(ds.y_train) % 2, args.rounds)
    step = ref[next(iter(ref))]
    rows = []
    order = ["training epoch", "exemplar selection", "herding algorithm",
             "exemplars + class means", "class means", "old model copy", "evaluation",
             "task total"]
    for t, sec, counts, ev in per_task:
        total = sec["task total"]
        for part in order:
            if part not in sec or (part == "exemplars + class means" and "class means" in sec):
                continue
            s = sec[part]
            n = counts.get(part)
            label = "  of which herding algorithm" if part == "herding algorithm" else part
            per = f"{1e3 * s / n:.2f}" if n else ""
            ratio = f"{s / n / step:.2f}x" if n else ""
            rows.append([t, label, n if n else "", f"{s:.2f}", per, ratio,
                         f"{100 * s / total:.0f}%"])
    for k, v in ref.items():
        rows.append(["", k, "", "", f"{1e3 * v:.2f}", f"{v / step:.2f}x", ""])
    header = ["task", "part", "images", "s", "ms/image", "x step/image", "share of task"]
    print()
    print_table(header, rows)
    last = per_task[-1][3]
    notes = [f"Synthetic official-format CIFAR-10: {per_class} training and {per_test} test "
             f"images per class, memory {memory} (2,000 x {per_class}/5,000), ResNet-32 FP, iCaRL "
             f"(CIFAR defaults: augmentation, batch {cfg.batch_size}, feature batch "
             f"{cfg.feature_batch_size}, test batch {cfg.test_batch_size}), 1 epoch a task, "
             f"2 classes a task, seed {SEED}; threads: {threads}.",
             "x step/image: the part's seconds per image over a training step's seconds per "
             "image (batch 128, forward + loss + backward + SGD), measured in the same run; the "
             "last rows are that step and its neighbours timed interleaved (best of "
             f"{args.rounds}). Training epoch images include the exemplars replayed; its time "
             "includes augmentation, batching and the old model's forward (KD).",
             "Exemplar selection = one eval-mode feature pass over the task's training images "
             "+ herding; class means = one pass over every exemplar; evaluation = one pass over "
             "the test images for the logits and the NME features together (FP; a quantized "
             "model takes a second pass for the features, which its audit counts).",
             f"Accuracy after task {last['task']} (synthetic data, a sanity check only): "
             f"CNN {last['cnn']['acc']:.1f}%, NME {last['nme']['acc']:.1f}%."]
    cmd = "make bench-task" + (" FULL=1" if args.full else "")
    path = write_table(name, "One CIL task, part by part, beside the training step", header,
                       rows, cmd, notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
