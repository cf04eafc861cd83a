"""One training step of the reference transformers under HDQT 4/8, FP8 and LUQ 4, each
against the FP step of the same model, measured in the same process.

Models (batch 128, SGD with momentum 0.9):
- har_transformer: 6 x 128 raw activity windows, 16 tokens, width 64, 3 blocks,
  4 heads, 11 classes (models/files/har_transformer.toml);
- vit_tiny: 3 x 32 x 32 images, 64 tokens, width 64, 4 blocks, 4 heads, 10 classes
  (models/files/vit_tiny.toml).
Both put attention's Q K^T and A V products under the datapath (the files'
quantize_products).

Protocol (as make bench-resnet):
- each model is measured in its own process, started only once the 1-minute load
  average is below 0.5 (polled every 5 s for up to LOAD_WAIT seconds, default 300;
  a process started on a busy machine is marked "(busy)");
- in that process the arithmetics' steps are interleaved (FP, HDQT, FP8, LUQ, FP,
  ...; best of REPEATS each, default 20, QUICK=1: 5, after one warm-up step each),
  at the default thread count and then with 1 thread (the thread count of a
  study's runs);
- ROUNDS rounds (default 2, QUICK=1: 1) run every model's process once; a row is
  its best over the rounds.

Target: the HDQT 4/8 step within 3x the FP step of the same model.
Run: make bench-transformer (table benchmarks/results/transformer_step.md; QUICK=1:
transformer_step_quick.md; MODELS=har_transformer,vit_tiny to choose).
"""
import json
import os
import sys
from types import SimpleNamespace

from intsim.kernels.runtime import configure_runtime

configure_runtime()     # intsim's process setup, before NumPy loads (as the intsim command)
import numpy as np  # noqa: E402

import intsim  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_resnet import (IDLE_LOAD, chosen, coretype_notes, env_int, fmt_s,  # noqa: E402
                          load_cell, make_command, make_step, measure_in_child, run_rounds,
                          threads_in_force, threads_label)
from benchutil import best_times, print_table, write_table  # noqa: E402

B = 128
QUICK = os.environ.get("QUICK", "0") == "1"
REPEATS = env_int("REPEATS", 5 if QUICK else 20)
ROUNDS = env_int("ROUNDS", 1 if QUICK else 2)
TARGET = 3.0                                     # HDQT 4/8 step / FP step
#: name -> (input shape of one sample, classes)
MODELS = {"har_transformer": ((6, 128), 11), "vit_tiny": ((3, 32, 32), 10)}
ARITHS = {"fp": "FP", "hdqt": "HDQT 4/8 clamp", "fp8": "FP8", "luq": "LUQ 4"}


def make_arith(name):
    return {"fp": intsim.FP(), "hdqt": intsim.HDQT(), "fp8": intsim.FP8(),
            "luq": intsim.LUQ()}[name]


def build(model_name, arith_name):
    """A reference transformer under one arithmetic, its classifier grown to its classes."""
    from intsim.models import model_spec
    shape, classes = MODELS[model_name]
    cc = SimpleNamespace(classifier_bias=False, attn_products="file")
    model = model_spec(model_name).build(cc, make_arith(arith_name), shape,
                                         np.random.default_rng(1))
    model.add_classes(classes, np.random.default_rng(2))
    return model


def one(model_name):
    """Time every arithmetic's step of ``model_name`` interleaved in this process, at the
    default thread count and then with 1 thread. Prints the figures as one JSON line."""
    from intsim.kernels.threads import set_threads
    shape, classes = MODELS[model_name]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B,) + shape).astype(np.float32)
    y = rng.integers(0, classes, B)
    steps = {a: make_step(build(model_name, a), X, y) for a in ARITHS}
    runs = {}
    for label, n in (("default", None), ("single", 1)):
        if n is not None:
            set_threads(n)
        runs[label] = {"threads": threads_in_force(),
                       **best_times(steps, rounds=REPEATS, warmup=1)}
    print(json.dumps({"model": model_name, "runs": runs}))


def measure(model_name):
    """``model_name``'s measurement in its own process, on an idle machine."""
    return measure_in_child(__file__, model_name, model_name, "bench-transformer")


def report_line(r):
    """One printed line of a finished model: each arithmetic's step at the default thread
    count and its ratio to FP."""
    v = r["runs"]["default"]
    return (f"{r['model']}: " + "  ".join(f"{ARITHS[a]} {1e3 * v[a]:.1f} ms ({v[a] / v['fp']:.2f}x)"
                                          for a in ARITHS) + f"  load {r['load']:.2f}")


def rows_of(model_name, rounds):
    """Table rows of one model: each arithmetic at each thread count, its best step over
    the rounds against the best FP step."""
    rows = []
    for label in ("default", "single"):
        runs = [r["runs"][label] for r in rounds]
        fp = min(v["fp"] for v in runs)
        for a in ARITHS:
            if a == "fp":
                continue
            t = min(v[a] for v in runs)
            ratio = t / fp
            target = f"<= {TARGET:g}x" if a == "hdqt" else ""
            met = ("yes" if ratio <= TARGET else "NO") if a == "hdqt" else ""
            rows.append([model_name, ARITHS[a], threads_label(runs[0]["threads"]),
                         f"{fmt_s(t)}", f"{fmt_s(fp)}", f"{ratio:.2f}x", target, met,
                         load_cell(rounds)])
    return rows


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one(sys.argv[2])
        return
    res = run_rounds(chosen("MODELS", MODELS, "bench-transformer"), ROUNDS, measure,
                     report_line)
    header = ["model", "arith", "threads", "step s", "FP step s", "ratio", "target", "met",
              "load"]
    rows = [row for n, rounds in res.items() for row in rows_of(n, rounds)]
    print()
    print_table(header, rows)
    busy = [n for n, rounds in res.items() if not all(r["idle"] for r in rounds)]
    notes = []
    if busy:
        notes += [f"**NOT an idle machine**: the 1-minute load average was still >= {IDLE_LOAD} "
                  f"when {', '.join(busy)} started (marked '(busy)').", ""]
    notes += [
        f"Protocol: one process per model, started once the 1-minute load average (load "
        f"column, one reading per round) is below {IDLE_LOAD}; in it the arithmetics' steps "
        f"interleaved ({', '.join(ARITHS.values())}, ...), best of {REPEATS} each after one "
        f"warm-up step, at the default thread count, then 1 thread; {ROUNDS} round"
        f"{'s' * (ROUNDS != 1)}, a row's figure its best over them. The baseline is the FP "
        f"step of the same model in the same process.",
        f"Step = forward + cross-entropy + backward + SGD (momentum 0.9), batch {B}; "
        f"har_transformer on 6 x 128 windows (11 classes), vit_tiny on 3 x 32 x 32 images "
        f"(10 classes), random inputs. Every Linear, the patch convolution and attention's "
        f"Q K^T and A V run under the datapath; LayerNorm, GELU, softmax and the residual adds "
        f"stay float32.",
    ]
    notes += coretype_notes()
    path = write_table("transformer_step_quick" if QUICK else "transformer_step",
                       "Transformer training step: HDQT 4/8, FP8 and LUQ 4 against FP",
                       header, rows, make_command("bench-transformer", "MODELS", QUICK), notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
