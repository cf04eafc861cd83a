"""One ResNet-32 training step (batch 128, 3x32x32, 100 classes, SGD with momentum)
under FP, HDQT 4/8 clamp, HDQT 4/8 saturate and LUQ 4, against the float32 GEMM limit,
and the FCNet-561 HDQT 4/8 step against the FP step of the same model.

The limit is the step's multiply-accumulates (forward, input gradient and weight
gradient of every conv and the classifier) at the float32 GEMM rate (a 2048^3
sgemm, best of 5) measured in the same process just before and just after the
timed steps; the better of the two readings counts.

Protocol:

- each measurement runs in its own process at the default thread count (all
  cores), so its peak RSS is its own;
- before each process starts, the 1-minute load average must be below 0.5: it is
  polled every 5 s for up to LOAD_WAIT seconds (default 300); a process started
  on a busy machine has its load marked "(busy)" in the table;
- a ResNet step is the best of REPEATS timed steps (default 5, QUICK=1: 3) after
  one warm-up step;
- ROUNDS rounds (default 2, QUICK=1: 1) each run every process once, in the
  order of ARITHS, so a drift of the machine hits every row alike; a row's step
  time and GEMM rate are its best over the rounds;
- a second, instrumented ResNet step (of the last round) splits the time by part
  (exclusive times: a part's nested parts are not counted twice);
- FCNet-561: one process times the FP and HDQT 4/8 steps interleaved (A B A B ...,
  best of 20 each, QUICK=1: 10), at the default thread count, then with 1 thread.

Run: make bench-resnet (table benchmarks/results/resnet.md; QUICK=1: fewer repeats,
table resnet_quick.md; ARITHS=fp,hdqt,saturate,luq,fcnet to choose; ROUNDS, REPEATS,
LOAD_WAIT as above).
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
from benchutil import best_time, best_times, md_table, print_table, write_table  # noqa: E402


def env_int(name, default):
    """An integer >= 1 from the environment variable ``name`` (``default`` when unset)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"bench-resnet: {name} must be an integer >= 1, got {raw!r}")
    return int(raw)


B = 128
QUICK = os.environ.get("QUICK", "0") == "1"
REPEATS = env_int("REPEATS", 3 if QUICK else 5)       # timed ResNet steps, best of
ROUNDS = env_int("ROUNDS", 1 if QUICK else 2)         # interleaved rounds of processes
FC_REPEATS = 10 if QUICK else 20                      # interleaved FCNet FP/HDQT pairs
IDLE_LOAD = 0.5                                       # 1-minute load average of an idle machine
LOAD_POLL = 5.0                                       # seconds between load readings
LOAD_WAIT = float(os.environ.get("LOAD_WAIT", "300"))  # longest wait for an idle machine, s
RSS_TARGET_MB = 2048                                  # peak RSS of the HDQT 4/8 clamp step

ARITHS = {"fp": "FP", "hdqt": "HDQT 4/8 clamp", "saturate": "HDQT 4/8 saturate",
          "luq": "LUQ 4", "fcnet": "FCNet-561 HDQT 4/8 / FP"}
TARGETS = {"fp": (3.0, None), "hdqt": (6.0, 4.0), "saturate": (8.0, None),
           "luq": (6.0, None)}                        # x GEMM limit: (target, stretch)
FC_TARGET = 2.0                                       # FCNet-561 HDQT 4/8 step / FP step
FUSED = "FWHT + quantizer (fused)"
PARTS = ("forward matmuls", "backward-input matmuls", "backward-weight matmuls",
         "quantizers", "FWHT", FUSED, "batch norm", "im2col/col2im", "rest")


def make_arith(name):
    return {"fp": intsim.FP(), "hdqt": intsim.HDQT(),
            "saturate": intsim.HDQT(acc_mode="saturate"), "luq": intsim.LUQ()}[name]


def make_step(model, X, y):
    """One training step of ``model`` on (X, y): forward, cross-entropy, backward, SGD
    (lr 0.01, momentum 0.9)."""
    from intsim import nn
    opt = intsim.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        _, g = nn.cross_entropy(model.forward(X), y)
        model.backward(g)
        opt.step()
    return step


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


def threads_in_force():
    """The thread counts of this process: {"numba": k, "openblas": m or None}."""
    import numba
    from intsim.kernels.threads import openblas_threads
    return {"numba": int(numba.get_num_threads()), "openblas": openblas_threads()}


def peak_rss_mb():
    """Peak resident set size of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    from intsim.datapath import exact, formats, integer, layout, lptorch
    from intsim.nn import batchnorm, conv, linear
    engines = (exact, integer, formats, lptorch, layout)   # layout: the float conv backward
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
    # qmatmul calls it as quant.hadamard_quantize_items: the module attribute is the one used
    quant.hadamard_quantize_items = pt.wrap(FUSED, quant.hadamard_quantize_items)
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


# ------------------------------------------------------------ one measurement (a child process)

def one_resnet(name):
    """Time one arithmetic's ResNet-32 step in this process: a warm-up step, the GEMM
    rate, the best of REPEATS steps, the GEMM rate again, then one instrumented step.
    Returns the figures (a JSON-able dict)."""
    from intsim.models import resnet32
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 100, B)
    model = resnet32(100, make_arith(name), np.random.default_rng(1))
    step = make_step(model, X, y)
    t_first = time.perf_counter()
    step()                                   # warm-up: compiles / loads cached kernels
    t_first = time.perf_counter() - t_first
    rate_before = gemm_rate()
    t = best_time(step, repeat=REPEATS, warmup=0)
    rate_after = gemm_rate()
    pt = instrument(model)                   # the wrapped step: split by part
    t0 = time.perf_counter()
    step()
    t_prof = time.perf_counter() - t0
    parts = dict(pt.total)
    parts["rest"] = t_prof - sum(v for k, v in parts.items() if k != "rest")
    return {"name": name, "step": t, "first_step": t_first, "gemm_before": rate_before,
            "gemm_after": rate_after, "macs": step_macs(model), "parts": parts,
            "profiled_step": t_prof, "threads": threads_in_force(), "peak_rss_mb": peak_rss_mb()}


def one_fcnet():
    """Time the FCNet-561 FP and HDQT 4/8 steps interleaved (best of FC_REPEATS each, after
    one warm-up step each), at the default thread count and then with 1 thread.
    Returns the figures (a JSON-able dict)."""
    from intsim.kernels.threads import set_threads
    from intsim.models import FCNet
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, 561)).astype(np.float32)
    y = rng.integers(0, 6, B)
    steps = {n: make_step(FCNet(561, (561, 561), make_arith(n), np.random.default_rng(1),
                                num_classes=6), X, y) for n in ("fp", "hdqt")}
    runs = {}
    for label, n in (("default", None), ("single", 1)):
        if n is not None:
            set_threads(n)
        runs[label] = {"threads": threads_in_force(),
                       **best_times(steps, rounds=FC_REPEATS, warmup=1)}
    return {"name": "fcnet", "runs": runs, "peak_rss_mb": peak_rss_mb()}


def one(name):
    """Measure ``name`` in this process and print its figures as one JSON line."""
    print(json.dumps(one_fcnet() if name == "fcnet" else one_resnet(name)))


# ------------------------------------------------------------ the runner (parent process)

def wait_idle():
    """Wait (polling every LOAD_POLL s, up to LOAD_WAIT s) for the 1-minute load average
    to fall below IDLE_LOAD. Returns (load, idle): the last reading and whether it did."""
    deadline = time.monotonic() + LOAD_WAIT
    load = os.getloadavg()[0]
    if load >= IDLE_LOAD:
        print(f"  load {load:.2f} >= {IDLE_LOAD}: waiting up to {LOAD_WAIT:g} s for an idle "
              f"machine", flush=True)
    while load >= IDLE_LOAD:
        left = deadline - time.monotonic()
        if left <= 0:
            return load, False
        time.sleep(min(LOAD_POLL, left))
        load = os.getloadavg()[0]
    return load, True


def measure_in_child(script, name, label, bench):
    """Wait for an idle machine, run ``script --one name`` in a child process and return
    the figures it prints as its last line (JSON), with the load at its start ("load",
    "idle"). label names the measurement in warnings, bench the benchmark in errors."""
    load, idle = wait_idle()
    if not idle:
        print(f"WARNING: load {load:.2f} still >= {IDLE_LOAD} after {LOAD_WAIT:g} s; measuring "
              f"{label} on a busy machine (marked '(busy)')", file=sys.stderr, flush=True)
    out = subprocess.run([sys.executable, os.path.abspath(script), "--one", name],
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        raise SystemExit(f"{bench}: {name} failed")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r.update(load=load, idle=idle)
    return r


def measure(name):
    """``name``'s measurement in its own process, on an idle machine (measure_in_child)."""
    return measure_in_child(__file__, name, ARITHS[name], "bench-resnet")


def report_line(r):
    """One printed line of a finished measurement."""
    busy = "" if r["idle"] else " (busy)"
    if r["name"] == "fcnet":
        parts = [f"{threads_label(v['threads'])} {v['hdqt'] / v['fp']:.2f}x "
                 f"({1e3 * v['hdqt']:.1f} / {1e3 * v['fp']:.1f} ms)" for v in r["runs"].values()]
        return f"{ARITHS['fcnet']}: {'   '.join(parts)}   load {r['load']:.2f}{busy}"
    lim = r["macs"] / max(r["gemm_before"], r["gemm_after"])
    return (f"{ARITHS[r['name']]:18s} step {r['step']:7.3f} s   limit {lim:6.3f} s   "
            f"{r['step'] / lim:5.2f}x limit   GEMM {r['gemm_before'] / 1e9:.0f} -> "
            f"{r['gemm_after'] / 1e9:.0f} G MAC/s   peak RSS {r['peak_rss_mb']:6.0f} MB   "
            f"load {r['load']:.2f}{busy}")


def threads_label(th):
    """'2 threads', '1 thread', or both pools' counts where they differ."""
    n, ob = th["numba"], th["openblas"]
    if ob is None or ob == n:
        return f"{n} thread{'s' * (n != 1)}"
    return f"Numba {n}, OpenBLAS {ob} threads"


def load_cell(rounds):
    """The loads at the start of a row's processes, one per round."""
    return ", ".join(f"{r['load']:.2f}" + ("" if r["idle"] else " (busy)") for r in rounds)


def fmt_s(t):
    """Seconds with 3 significant decimals for steps of a second, 4 for shorter ones."""
    return f"{t:.3f}" if t >= 0.1 else f"{t:.4f}"


def resnet_row(name, rounds):
    """The table row of a ResNet-32 arithmetic from its rounds: best step, best GEMM rate."""
    step = min(r["step"] for r in rounds)
    rate = max(max(r["gemm_before"], r["gemm_after"]) for r in rounds)
    lim = rounds[0]["macs"] / rate
    ratio = step / lim
    target, stretch = TARGETS[name]
    met = "yes" if ratio <= target else "NO"
    if stretch is not None:
        met += f" ({stretch:g}x: {'yes' if ratio <= stretch else 'NO'})"
    rss = max(r["peak_rss_mb"] for r in rounds)
    rss_target, rss_met = "", ""
    if name == "hdqt":
        rss_target = f"<= {RSS_TARGET_MB}"
        rss_met = "yes" if rss <= RSS_TARGET_MB else "NO"
    tgt = f"<= {target:g}x" + (f" ({stretch:g}x)" if stretch is not None else "")
    return [f"ResNet-32 {ARITHS[name]}", fmt_s(step), f"{fmt_s(lim)} (GEMM limit)",
            f"{ratio:.2f}x", tgt, met, f"{rss:.0f}", rss_target, rss_met,
            f"{rounds[0]['first_step']:.1f}", load_cell(rounds)]


def fcnet_rows(rounds):
    """The table rows of FCNet-561 (default threads, 1 thread): best HDQT and FP steps
    over the rounds and their ratio."""
    rows = []
    rss = max(r["peak_rss_mb"] for r in rounds)
    for label in ("default", "single"):
        runs = [r["runs"][label] for r in rounds]
        hdqt, fp = min(v["hdqt"] for v in runs), min(v["fp"] for v in runs)
        ratio = hdqt / fp
        rows.append([f"FCNet-561 HDQT 4/8 clamp, {threads_label(runs[0]['threads'])}",
                     fmt_s(hdqt), f"{fmt_s(fp)} (FP step)", f"{ratio:.2f}x",
                     f"<= {FC_TARGET:g}x", "yes" if ratio <= FC_TARGET else "NO",
                     f"{rss:.0f}", "", "", "-", load_cell(rounds)])
    return rows


def breakdown(res):
    """The part-by-part table (header, rows) of the ResNet-32 arithmetics' last rounds."""
    last = {n: rounds[-1] for n, rounds in res.items() if n != "fcnet"}
    header = ["part"] + [ARITHS[n] for n in last]
    rows = [[p] + [f"{1e3 * r['parts'][p]:.0f} ms ({100 * r['parts'][p] / r['profiled_step']:.0f}%)"
                   for r in last.values()] for p in PARTS]
    rows.append(["profiled step"] + [f"{1e3 * r['profiled_step']:.0f} ms" for r in last.values()])
    return header, rows


def make_command(target, choice_var, quick):
    """The command that reproduces a benchmark run: ``make target`` with the knobs set
    (QUICK when on, the choice variable, ROUNDS, REPEATS, LOAD_WAIT)."""
    knobs = [f"{k}={os.environ[k]}" for k in ("QUICK", choice_var, "ROUNDS", "REPEATS", "LOAD_WAIT")
             if os.environ.get(k, "").strip() and not (k == "QUICK" and not quick)]
    return " ".join(knobs + [f"make {target}"])


def command():
    """The command that reproduces this run: the make target with the knobs set."""
    return make_command("bench-resnet", "ARITHS", QUICK)


def coretype_notes():
    """The note on OPENBLAS_CORETYPE when the machine sets it (a list of 0 or 1 notes)."""
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if not coretype:
        return []
    return [f"This machine sets OPENBLAS_CORETYPE={coretype}, which can slow float32 GEMMs "
            f"against a build for the CPU at hand; the ratios compare like with like."]


def chosen(var, choices, bench):
    """The names in the environment variable ``var`` (comma-separated; all of ``choices``
    when unset); SystemExit naming the unknown ones."""
    names = [n for n in os.environ.get(var, ",".join(choices)).split(",") if n]
    unknown = [n for n in names if n not in choices]
    if unknown:
        raise SystemExit(f"{bench}: unknown {var} {','.join(unknown)} "
                         f"(choose from {','.join(choices)})")
    return names


def run_rounds(names, rounds, measure_one, report):
    """``rounds`` rounds of ``measure_one(name)`` for each name in order, printing
    ``report(figures)`` after each. Returns {name: [figures per round]}."""
    res = {n: [] for n in names}
    for k in range(rounds):
        print(f"round {k + 1} of {rounds}", flush=True)
        for n in names:
            r = measure_one(n)
            res[n].append(r)
            print(report(r), flush=True)
    return res


def notes_for(res):
    """The notes under the table: setup, protocol, GEMM rates, the breakdown's meaning."""
    resnet = {n: rounds for n, rounds in res.items() if n != "fcnet"}
    busy = [ARITHS[n] for n, rounds in res.items() if not all(r["idle"] for r in rounds)]
    notes = []
    if busy:
        notes += [f"**NOT an idle machine**: the 1-minute load average was still >= {IDLE_LOAD} "
                  f"after waiting {LOAD_WAIT:g} s when {', '.join(busy)} started (load marked "
                  f"'(busy)'); those figures are slowed by other work.", ""]
    notes.append(
        f"Protocol: before each measurement process starts, the 1-minute load average (load "
        f"column, one reading per round) must be below {IDLE_LOAD} (polled every {LOAD_POLL:g} s, "
        f"for up to {LOAD_WAIT:g} s). {ROUNDS} round{'s' * (ROUNDS != 1)}, each running every "
        f"row's process once in the order of the table, so a drift of the machine hits every "
        f"row alike; a row's step time and GEMM rate are its best over the rounds, its peak RSS "
        f"the largest, its first step that of the first round.")
    if resnet:
        th = next(iter(resnet.values()))[0]["threads"]
        macs = next(iter(resnet.values()))[0]["macs"]
        notes.append(
            f"ResNet-32: batch {B}, 3x32x32 inputs, 100 classes, SGD momentum 0.9; default "
            f"threads ({threads_label(th)}, {os.cpu_count()} cores). Step = forward + "
            f"cross-entropy + backward + SGD, best of {REPEATS} timed step{'s' * (REPEATS != 1)} "
            f"after one warm-up step.")
        notes.append(
            f"GEMM limit = the step's {macs / 1e9:.1f} G multiply-accumulates at the float32 GEMM "
            f"rate measured in the arithmetic's own process just before and just after its timed "
            f"steps (2048^3 sgemm, best of 5), the better of the two. Rates before -> after, G "
            f"MAC/s, per round: "
            + "; ".join(f"{ARITHS[n]} " + ", ".join(
                f"{r['gemm_before'] / 1e9:.0f} -> {r['gemm_after'] / 1e9:.0f}" for r in rounds)
                for n, rounds in resnet.items()) + ".")
        notes.append(
            "Peak RSS: the whole process (Python, libraries, model, the warm-up, the timed and "
            "the instrumented steps); the RSS target is the HDQT 4/8 clamp one's. First step: "
            "the warm-up, including loading (or compiling) Numba kernels.")
    if "fcnet" in res:
        notes.append(
            f"FCNet-561 (561 -> 561 -> 561 -> 6, batch {B}, SGD momentum 0.9): the HDQT 4/8 "
            f"clamp step over the FP step of the same model, both timed in one process, "
            f"interleaved (FP, HDQT, FP, HDQT, ...; best of {FC_REPEATS} each after one warm-up "
            f"step each), at the default thread count, then with 1 thread "
            f"(intsim.kernels.threads.set_threads).")
    if resnet:
        notes.append(
            f"Breakdown (second table): one instrumented ResNet-32 step of the last round, "
            f"exclusive wall time per part; '{FUSED}' is "
            f"intsim.kernels.quant.hadamard_quantize_items (the Hadamard transform and "
            f"quantization of a convolution's backward operand in one pass), 'FWHT' and "
            f"'quantizers' are the separate ones; 'rest' is the step minus the parts (losses, "
            f"ReLU, pooling, shortcuts, optimiser, layer glue such as scaling and transposes). "
            f"FP's matmuls are NumPy float32 GEMMs; HDQT/LUQ's integer ones go through "
            f"intsim.kernels.intmm.")
    return notes + coretype_notes()


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one(sys.argv[2])
        return
    res = run_rounds(chosen("ARITHS", ARITHS, "bench-resnet"), ROUNDS, measure, report_line)
    header = ["step", "step s", "baseline s", "ratio", "target", "met", "peak RSS MB",
              "RSS target MB", "RSS met", "first step s", "load"]
    rows = []
    for n, rounds in res.items():
        rows += fcnet_rows(rounds) if n == "fcnet" else [resnet_row(n, rounds)]
    print()
    print_table(header, rows)
    notes = notes_for(res)
    extra = []
    if any(n != "fcnet" for n in res):
        bh, brows = breakdown(res)
        print()
        print_table(bh, brows)
        extra = ["", "### Time by part (ResNet-32)", "", md_table(bh, brows)]
    if any(not r["idle"] for rounds in res.values() for r in rounds):
        print(f"WARNING: some rows were measured on a busy machine (load >= {IDLE_LOAD}); "
              f"the table says so", file=sys.stderr)
    title = "ResNet-32 training step vs the float32 GEMM limit, FCNet-561 HDQT vs FP"
    path = write_table("resnet_quick" if QUICK else "resnet", title, header, rows, command(),
                       notes + extra)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
