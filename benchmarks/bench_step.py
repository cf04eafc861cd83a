"""One training step (batch 128: forward + loss + backward + SGD) per arithmetic.

FCNet-561 (hidden 561, 561; 6 classes) and ResNet-32 (32x32x3, 100 classes)
under FP, HDQT 4/8 (clamp; for FCNet also with the saturating accumulator) and
LUQ 4-bit, each as a ratio to the FP step of the same
model, plus the FP ResNet-32 step against the time of its own float32 matmuls
alone (the same GEMM shapes, timed in the same run).
Targets: HDQT <= 3x FP for FCNet-561, <= 4x for ResNet-32; FP
ResNet-32 step <= 3x its matmuls.  Run: make bench-step
"""
import os
import sys

from intsim.kernels.runtime import configure_runtime

configure_runtime()     # intsim's process setup, before NumPy loads (as the intsim command)
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import best_time, print_table, write_table  # noqa: E402

import intsim  # noqa: E402
from intsim.kernels.threads import set_threads  # noqa: E402
from intsim import nn  # noqa: E402
from intsim.models import FCNet, resnet32  # noqa: E402

B = 128
QUICK = os.environ.get("QUICK", "0") == "1"
# Threads for OpenBLAS and Numba in this process (env BENCH_THREADS, default 1):
# on the shared 2-core machine, 2-thread OpenBLAS/Numba regions stalled badly
# (a 128x561x561 GEMM took 70 ms with 2 threads vs 4 ms with 1).
THREADS = int(os.environ.get("BENCH_THREADS", "1"))


def make_step(model, X, y):
    opt = intsim.optim.SGD(model.parameters(), lr=0.01)

    def step():
        _, g = nn.cross_entropy(model.forward(X), y)
        model.backward(g)
        opt.step()
    return step


def resnet_gemms(model, X):
    """A function running the float32 GEMMs of one FP ResNet step (fwd + 2 bwd per layer)."""
    rng = np.random.default_rng(0)
    shapes = []
    h = X.shape[2]
    for _, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            hin = h
            h = (hin + 2 * m.padding - m.k) // m.stride + 1
            shapes.append((B * h * h, m.in_ch * m.k * m.k, m.out_ch))
        elif isinstance(m, nn.Linear):
            shapes.append((B, m.in_features, m.out_features))
    ops = []
    for M, K, N in shapes:
        a = rng.standard_normal((M, K)).astype(np.float32)
        w = rng.standard_normal((N, K)).astype(np.float32)
        g = rng.standard_normal((M, N)).astype(np.float32)
        ops.append((a, w, g))

    def run():
        for a, w, g in ops:
            a @ w.T
            g.T @ a
            g @ w
    return run, len(shapes)


def main():
    used = set_threads(THREADS)
    print(f"threads: {used}", flush=True)
    rng = np.random.default_rng(0)
    ariths = [("FP", intsim.FP()), ("HDQT 4/8", intsim.HDQT()), ("LUQ 4", intsim.LUQ())]
    rows = []
    notes = []
    Xf = rng.standard_normal((B, 561)).astype(np.float32)
    yf = rng.integers(0, 6, B)
    Xr = rng.standard_normal((B, 3, 32, 32)).astype(np.float32)
    yr = rng.integers(0, 100, B)
    rep_f, rep_r = (3, 1) if QUICK else (7, 3)
    for model_name, build, X, y, rep, target in (
            ("FCNet-561", lambda a: FCNet(561, (561, 561), a, np.random.default_rng(1), num_classes=6),
             Xf, yf, rep_f, 3.0),
            ("ResNet-32", lambda a: resnet32(100, a, np.random.default_rng(1)), Xr, yr, rep_r, 4.0)):
        base = None
        extra = [("HDQT 4/8 saturate", intsim.HDQT(acc_mode="saturate"))] \
            if model_name == "FCNet-561" else []
        for an, a in ariths + extra:
            model = build(a)
            t = best_time(make_step(model, X, y), repeat=rep, warmup=1)
            if base is None:
                base = t
                fp_model = model
            ratio = t / base
            tgt = f"<= {target:g}x" if an == "HDQT 4/8" else ""   # the target, HDQT 4/8 clamp
            ok = "" if not tgt else ("yes" if ratio <= target else "NO")
            rows.append([model_name, an, f"{1e3 * t:.1f}", f"{ratio:.2f}x FP step", tgt, ok])
            print(f"{model_name:10s} {an:9s} {1e3 * t:9.1f} ms  {ratio:5.2f}x FP", flush=True)
        if model_name == "ResNet-32":
            run, n = resnet_gemms(fp_model, X)
            tg = best_time(run, repeat=rep, warmup=1)
            ratio = base / tg
            rows.append([model_name, f"FP step vs its {n}x3 float32 GEMMs", f"{1e3 * tg:.1f} (GEMMs)",
                         f"{ratio:.2f}x GEMMs", "<= 3x", "yes" if ratio <= 3 else "NO"])
            print(f"ResNet-32 FP step / its float32 GEMMs alone ({1e3 * tg:.1f} ms): {ratio:.2f}x", flush=True)
    header = ["model", "arithmetic", "step ms", "ratio", "target", "met"]
    print()
    print_table(header, rows)
    notes.append(f"Batch {B}; one step = forward + cross-entropy + backward + SGD(momentum). "
                 "Best of several runs; the 2 cores may be shared with other jobs, so timings are noisy.")
    notes.append(f"OpenBLAS and Numba threads: {THREADS} (BENCH_THREADS=n to change).")
    path = write_table("step", "Training step time: FP vs HDQT vs LUQ", header, rows,
                       "make bench-step", notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
