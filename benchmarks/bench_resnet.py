"""One ResNet-32 training step (batch 128, 3x32x32, 100 classes, SGD with momentum)
under FP, HDQT 4/8 clamp, HDQT 4/8 saturate and LUQ 4, against the float32 GEMM limit.

The limit is the step's multiply-accumulates (forward, input gradient and weight
gradient of every conv and the classifier) at the float32 GEMM rate measured in
the same run (a 2048^3 sgemm, best of several). Each arithmetic runs in its own
process with the default thread count (all cores), so its peak RSS is its own.
A second, instrumented step splits the time by part (exclusive times: a part's
nested parts are not counted twice). Run: make bench-resnet (QUICK=1: fewer
repeats; ARITHS=fp,hdqt to choose).
"""
import json
import os
import resource
import subprocess
import sys
import time

from intsim.kernels.runtime import configure_runtime

configure_runtime()     # intsim's process setup, before NumPy loads (as the intsim command)
import numpy as np  # noqa: E402

import intsim  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import best_time, md_table, print_table, write_table  # noqa: E402

B = 128
QUICK = os.environ.get("QUICK", "0") == "1"
ARITHS = {"fp": "FP", "hdqt": "HDQT 4/8 clamp", "saturate": "HDQT 4/8 saturate",
          "luq": "LUQ 4"}
TARGETS = {"fp": 2.5, "hdqt": 5.0, "saturate": 10.0, "luq": 5.0}
PARTS = ("forward matmuls", "backward-input matmuls", "backward-weight matmuls",
         "quantizers", "FWHT", "batch norm", "im2col/col2im", "rest")


def make_arith(name):
    return {"fp": intsim.FP(), "hdqt": intsim.HDQT(),
            "saturate": intsim.HDQT(acc_mode="saturate"), "luq": intsim.LUQ()}[name]


def step_macs(model, hw=32):
    """Multiply-accumulates of one training step: 3x the forward's (fwd, dx, dW)."""
    from intsim import nn
    macs = 0
    h = hw
    for _, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            h = (h + 2 * m.padding - m.k) // m.stride + 1
            macs += B * h * h * m.in_ch * m.k * m.k * m.out_ch
        elif isinstance(m, nn.Linear):
            macs += B * m.in_features * m.out_features
    return 3 * macs


def gemm_rate():
    """float32 GEMM multiply-accumulates per second (2048^3 sgemm, best of 5)."""
    n = 2048
    a = np.ones((n, n), np.float32)
    b = np.ones((n, n), np.float32)
    t = best_time(lambda: a @ b, repeat=5, warmup=1)
    return n ** 3 / t


class PartTimer:
    """Exclusive wall time per part of the functions wrapped with ``wrap``.

    A part is a name, or a function of no arguments giving the name at call time
    (for float matmuls, which part they belong to depends on the pass in progress:
    ``phase``, a name or such a function).
    """

    def __init__(self):
        self.total = {p: 0.0 for p in PARTS}
        self.stack = []
        self.phase = "forward matmuls"

    def current(self):
        return self.phase() if callable(self.phase) else self.phase

    def wrap(self, part, fn):
        def timed(*args, **kwargs):
            cat = part() if callable(part) else part
            self.stack.append([cat, time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                c, t0, child = self.stack.pop()
                el = time.perf_counter() - t0
                self.total[c] += el - child
                if self.stack:
                    self.stack[-1][2] += el
        return timed

    def phased(self, phase, fn):
        """fn run with ``phase`` as the pass in progress. A list phase names the part of
        each successive float matmul inside one call (the last repeats)."""
        def run(*a, **kw):
            prev = self.phase
            if isinstance(phase, list):
                seq = iter(phase)
                last = [phase[-1]]

                def nxt():
                    last[0] = next(seq, last[0])
                    return last[0]
                self.phase = nxt
            else:
                self.phase = phase
            try:
                return fn(*a, **kw)
            finally:
                self.phase = prev
        return run


def instrument(model):
    """Wrap the engine's functions (in this process only) so a step's time splits by part."""
    from intsim.kernels import hadamard, im2col, intmm, luq, quant
    from intsim.arith import qmatmul
    from intsim.datapath import exact, formats, integer, lptorch
    from intsim.nn import batchnorm, conv, linear
    engines = (exact, integer, formats, lptorch)
    pt = PartTimer()
    names = {"forward": "forward matmuls", "backward_input": "backward-input matmuls",
             "backward_weight": "backward-weight matmuls"}
    pass_of = {}
    for _, m in model.named_modules():
        la = getattr(m, "layer_audit", None)
        if la is not None:
            for p, a in la.passes().items():
                pass_of[id(a)] = names[p]
    orig = intmm.matmul_acc

    def matmul_acc(*args, **kw):
        return pt.wrap(pass_of.get(id(kw.get("audit")), pt.current()), orig)(*args, **kw)
    intmm.matmul_acc = matmul_acc
    orig_km = intmm.matmul_acc_km

    def matmul_acc_km(*args, **kw):
        return pt.wrap(pass_of.get(id(kw.get("audit")), pt.current()), orig_km)(*args, **kw)
    intmm.matmul_acc_km = matmul_acc_km
    for mod, fname in ((quant, "quantize_f32"), (quant, "quantize_items"),
                       (luq, "sawb_quantize"), (luq, "log_quantize"),
                       (qmatmul, "quantize_forward")):
        setattr(mod, fname, pt.wrap("quantizers", getattr(mod, fname)))
    hadamard.fwht = pt.wrap("FWHT", hadamard.fwht)
    for mod in engines:
        for fname in ("im2col", "im2col_km", "col2im", "col2im_km"):
            if hasattr(mod, fname):
                setattr(mod, fname, pt.wrap("im2col/col2im", getattr(im2col, fname)))
    BN = batchnorm.BatchNorm2d
    BN.forward = pt.wrap("batch norm", BN.forward)
    BN.backward = pt.wrap("batch norm", BN.backward)

    class _NP:
        """numpy, with matmul timed as the part of the pass in progress."""

        def __getattr__(self, k):
            return getattr(np, k)

        @staticmethod
        def matmul(*args, **kw):
            return pt.wrap(pt.current, np.matmul)(*args, **kw)
    for mod in engines + (qmatmul,):
        mod.np = _NP()
    C = conv.Conv2d
    fwd, bin_, bw = "forward matmuls", "backward-input matmuls", "backward-weight matmuls"
    C.forward = pt.phased(fwd, C.forward)
    C.backward = pt.phased([bw, bin_], C.backward)    # the float products: dW, then dx
    qmatmul.luq_backward_km = pt.phased([bin_, bw], qmatmul.luq_backward_km)
    linear.Linear.forward = pt.phased(fwd, linear.Linear.forward)
    linear.Linear.backward = pt.phased(bin_, linear.Linear.backward)
    return pt


def one(name):
    """Time one arithmetic (in this process); prints a JSON line of figures."""
    from intsim import nn
    from intsim.models import resnet32
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 100, B)
    model = resnet32(100, make_arith(name), np.random.default_rng(1))
    opt = intsim.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        _, g = nn.cross_entropy(model.forward(X), y)
        model.backward(g)
        opt.step()
    t_compile = time.perf_counter()
    step()                                   # compiles / loads cached kernels
    t_compile = time.perf_counter() - t_compile
    rate = gemm_rate()
    t = best_time(step, repeat=2 if QUICK else 4, warmup=0)
    rate = max(rate, gemm_rate())            # the better of two rate readings
    pt = instrument(model)                   # the wrapped step: split by part
    t0 = time.perf_counter()
    step()
    t_prof = time.perf_counter() - t0
    parts = dict(pt.total)
    parts["rest"] = t_prof - sum(v for k, v in parts.items() if k != "rest")
    macs = step_macs(model)
    print(json.dumps({"name": name, "step": t, "first_step": t_compile, "gemm_rate": rate,
                      "macs": macs, "parts": parts, "profiled_step": t_prof,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one(sys.argv[2])
        return
    names = [n for n in os.environ.get("ARITHS", ",".join(ARITHS)).split(",") if n]
    res = {}
    for n in names:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", n],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            raise SystemExit(f"bench-resnet: {n} failed")
        res[n] = json.loads(out.stdout.strip().splitlines()[-1])
        r = res[n]
        lim = r["macs"] / r["gemm_rate"]
        print(f"{ARITHS[n]:18s} step {r['step']:7.3f} s   limit {lim:6.3f} s   "
              f"{r['step'] / lim:5.2f}x limit   peak RSS {r['peak_rss_mb']:6.0f} MB", flush=True)
    header = ["arithmetic", "step s", "GEMM limit s", "x limit", "target", "met", "peak RSS MB",
              "first step s"]
    rows = []
    for n, r in res.items():
        lim = r["macs"] / r["gemm_rate"]
        ratio = r["step"] / lim
        tg = TARGETS[n]
        rows.append([ARITHS[n], f"{r['step']:.3f}", f"{lim:.3f}", f"{ratio:.2f}x", f"<= {tg:g}x",
                     "yes" if ratio <= tg else "NO", f"{r['peak_rss_mb']:.0f}",
                     f"{r['first_step']:.1f}"])
    bh = ["part"] + [ARITHS[n] for n in res]
    brows = []
    for p in PARTS:
        brows.append([p] + [f"{1e3 * r['parts'][p]:.0f} ms ({100 * r['parts'][p] / r['profiled_step']:.0f}%)"
                            for r in res.values()])
    brows.append(["profiled step"] + [f"{1e3 * r['profiled_step']:.0f} ms" for r in res.values()])
    print()
    print_table(header, rows)
    print()
    print_table(bh, brows)
    any_r = next(iter(res.values()))
    notes = [
        f"Batch {B}, ResNet-32, 3x32x32 inputs, 100 classes, SGD momentum 0.9; default threads "
        f"(all {os.cpu_count()} cores). Step = forward + cross-entropy + backward + SGD, best of "
        f"{2 if QUICK else 4}.",
        f"GEMM limit = the step's {any_r['macs'] / 1e9:.1f} G multiply-accumulates at the float32 "
        f"GEMM rate measured in each arithmetic's process (2048^3 sgemm: "
        + ", ".join(f"{ARITHS[n]} {r['gemm_rate'] / 1e9:.0f}" for n, r in res.items())
        + " G MAC/s).",
        "Peak RSS: the whole process (Python, libraries, model, one warm-up, the timed and the "
        "instrumented steps). First step: includes loading (or compiling) Numba kernels.",
        "Breakdown (second table): one instrumented step, exclusive wall time per part; "
        "'rest' is the step minus the parts (losses, ReLU, pooling, shortcuts, optimiser, "
        "layer glue such as scaling and transposes). FP's matmuls are NumPy float32 GEMMs; "
        "HDQT/LUQ's integer ones go through intsim.kernels.intmm.",
        "This machine sets OPENBLAS_CORETYPE=Haswell, which halves float32 GEMM speed against "
        "a current CPU build; the ratios compare like with like.",
    ]
    path = write_table("resnet", "ResNet-32 training step vs the float32 GEMM limit", header, rows,
                       "make bench-resnet", notes + ["", "### Time by part", "",
                                                     md_table(bh, brows)])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
