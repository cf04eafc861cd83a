"""Kernel speed against baselines measured in the same run.

- int_matmul clamp / saturate / wrap (and wide) on 4096x576 @ 576x64, 4-bit
  operands, tile 32, acc 8, vs float32 ``a @ b`` and NumPy int64 ``a @ b``;
- fwht on 2^22 float32 elements in blocks of 32, 128, 1024 (last axis) vs
  multiplying by block_hadamard (float32 BLAS) and vs a plain array copy;
- quantize (4-bit, stochastic) vs a plain NumPy expression doing the same.
Targets: clamp <= 3x float32 GEMM; saturate <= 15x; fwht at block 1024 >= 5x
faster than the dense product and <= 4x a copy.

Run: make bench-kernels   (writes benchmarks/results/kernels.md)
"""
import os
import sys

from intsim.kernels.runtime import configure_runtime

configure_runtime()     # intsim's process setup, before NumPy loads (as the intsim command)
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import best_times, print_table, write_table  # noqa: E402

from intsim.kernels.hadamard import block_hadamard, fwht  # noqa: E402
from intsim.kernels.intmm import Audit, int_matmul, matmul_acc  # noqa: E402
from intsim.kernels.quant import quantize, quantize_f32  # noqa: E402


def ms(t):
    return f"{t * 1e3:.2f}"


def bench_matmul(rows):
    rng = np.random.default_rng(0)
    a = rng.integers(-7, 8, (4096, 576), dtype=np.int8)
    b = rng.integers(-7, 8, (576, 64), dtype=np.int8)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    modes = ("clamp", "saturate", "wrap", "wide")
    fns = {"f32": lambda: af @ bf}
    for mode in modes:
        fns[mode] = lambda mode=mode: int_matmul(a, b, acc_bits=8, tile=32, mode=mode)
        fns[mode + " f32"] = lambda mode=mode: matmul_acc(af, bf, acc_bits=8, tile=32,
                                                          mode=mode, a_max=7, b_max=7)
    for mode in ("clamp", "saturate"):   # as in training, where every call is audited
        fns[mode + " audit"] = lambda mode=mode: int_matmul(a, b, acc_bits=8, tile=32, mode=mode,
                                                            audit=Audit())
    t = best_times(fns, rounds=12)
    t_f32 = t["f32"]
    t_i64 = best_times({"i64": lambda: a64 @ b64}, rounds=3)["i64"]
    rows.append(["float32 a@b (baseline)", "4096x576x64", ms(t_f32), "1.00", f"{t_f32 / t_i64:.2f}", ""])
    rows.append(["int64 a@b (baseline)", "4096x576x64", ms(t_i64), f"{t_i64 / t_f32:.2f}", "1.00", ""])
    target = {"clamp": 3.0, "saturate": 15.0}
    for mode in modes:
        ti, tf = t[mode], t[mode + " f32"]
        tgt = target.get(mode)
        verdict = "" if tgt is None else f"<= {tgt:g}x: {'met' if ti / t_f32 <= tgt else 'MISSED'}"
        rows.append([f"int_matmul {mode} (int8 in)", "tile 32, acc 8", ms(ti),
                     f"{ti / t_f32:.2f}", f"{ti / t_i64:.3f}", verdict])
        rows.append([f"matmul_acc {mode} (float32 in)", "tile 32, acc 8", ms(tf),
                     f"{tf / t_f32:.2f}", f"{tf / t_i64:.3f}", ""])
        if mode + " audit" in t:
            ta = t[mode + " audit"]
            rows.append([f"int_matmul {mode} + Audit", "tile 32, acc 8", ms(ta),
                         f"{ta / t_f32:.2f}", f"{ta / t_i64:.3f}", ""])


def _fwht_row(label, shape, fwd, dense, x, target):
    t = best_times({"fwht": fwd, "dense": dense, "copy": lambda: x.copy()}, rounds=10)
    tf, td, tc = t["fwht"], t["dense"], t["copy"]
    verdict = target
    if target == "target":
        ok = td / tf >= 5 and tf / tc <= 4
        verdict = f">= 5x faster than dense, <= 4x copy: {'met' if ok else 'MISSED'}"
    return [label, shape, ms(tf), f"dense {ms(td)} ms: {td / tf:.2f}x faster",
            f"copy {ms(tc)} ms: {tf / tc:.2f}x copy", verdict]


def bench_fwht(rows):
    n = 1 << 22
    rng = np.random.default_rng(1)
    for blk in (32, 128, 1024):
        x = rng.standard_normal((n // blk, blk)).astype(np.float32)
        H = block_hadamard(blk, dtype=np.float32)
        rows.append(_fwht_row(f"fwht block {blk}", "2^22 float32, axis -1", lambda: fwht(x),
                              lambda: x @ H, x, "target" if blk == 1024 else ""))
    # the backward's other layout: transform over axis 0 (batch rows)
    x = rng.standard_normal((1024, n // 1024)).astype(np.float32)
    H = block_hadamard(1024, dtype=np.float32)
    rows.append(_fwht_row("fwht block 1024, axis 0", "2^22 float32 (1024, 4096)",
                          lambda: fwht(x, axis=0), lambda: H @ x, x, "(extra)"))


def bench_quant(rows):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(1 << 22).astype(np.float32)

    def plain():
        s = np.float32(np.abs(x).max() / 7)
        return np.floor(np.clip(x / s, -7, 7) + rng.random(x.shape, dtype=np.float32))

    g = np.random.default_rng(3)
    t = best_times({"plain": plain,
                    "q": lambda: quantize(x, 4, rounding="stochastic", rng=g),
                    "qf": lambda: quantize_f32(x, 4, rounding="stochastic", rng=g)}, rounds=6)
    t_plain, t_q, t_qf = t["plain"], t["q"], t["qf"]
    rows.append(["plain NumPy stochastic (baseline)", "2^22 float32", ms(t_plain), "1.00", "", ""])
    rows.append(["quantize stochastic 4-bit (int8 out)", "2^22 float32", ms(t_q),
                 f"{t_q / t_plain:.2f}", "", ""])
    rows.append(["quantize_f32 stochastic 4-bit", "2^22 float32", ms(t_qf),
                 f"{t_qf / t_plain:.2f}", "", ""])


def main():
    # warm the Numba caches so compile time is not measured
    fwht(np.ones((4, 1024), np.float32))
    fwht(np.ones((1024, 4), np.float32), axis=0)
    for mode in ("clamp", "saturate", "wrap", "wide"):
        int_matmul(np.ones((4, 64), np.int8), np.ones((64, 4), np.int8), mode=mode)
    header_mm = ["kernel", "shape", "ms", "x float32 GEMM", "x int64 @", "target"]
    mm = []
    bench_matmul(mm)
    print_table(header_mm, mm)
    print()
    header_h = ["kernel", "shape", "ms", "vs dense product", "vs copy", "target"]
    fw = []
    bench_fwht(fw)
    print_table(header_h, fw)
    print()
    header_q = ["kernel", "shape", "ms", "x plain NumPy", "", ""]
    qu = []
    bench_quant(qu)
    print_table(header_q, qu)
    rows = [["**matmul**", "", "", "x float32 GEMM", "x int64 @", "target"]] + mm
    rows += [["**fwht**", "", "", "vs dense product", "vs copy", "target"]] + fw
    rows += [["**quantize**", "", "", "x plain NumPy", "", ""]] + qu
    notes = ["Each figure is the best of 10-12 calls, the candidates of one row group called "
             "in turn (interleaved), so the ratios compare the same moments of the machine. "
             "This VM's speed drifts (the same float32 GEMM took 1.6-3.5 ms within one hour), "
             "so compare ratios, not milliseconds."]
    path = write_table("kernels", "Kernel speed", header_mm, rows,
                       "make bench-kernels", notes)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
