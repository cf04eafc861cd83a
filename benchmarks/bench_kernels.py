"""Kernel speed against baselines measured in the same run (issue 2).

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

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import best_time, print_table, write_table  # noqa: E402

from intsim.hadamard import block_hadamard, fwht  # noqa: E402
from intsim.intmm import int_matmul, matmul_acc  # noqa: E402
from intsim.quant import quantize, quantize_f32  # noqa: E402


def ms(t):
    return f"{t * 1e3:.2f}"


def bench_matmul(rows):
    rng = np.random.default_rng(0)
    a = rng.integers(-7, 8, (4096, 576), dtype=np.int8)
    b = rng.integers(-7, 8, (576, 64), dtype=np.int8)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    t_f32 = best_time(lambda: af @ bf, repeat=7)
    t_i64 = best_time(lambda: a64 @ b64, repeat=3)
    rows.append(["float32 a@b (baseline)", "4096x576x64", ms(t_f32), "1.00", f"{t_f32 / t_i64:.2f}", ""])
    rows.append(["int64 a@b (baseline)", "4096x576x64", ms(t_i64), f"{t_i64 / t_f32:.2f}", "1.00", ""])
    target = {"clamp": 3.0, "saturate": 15.0}
    for mode in ("clamp", "saturate", "wrap", "wide"):
        t = best_time(lambda: int_matmul(a, b, acc_bits=8, tile=32, mode=mode), repeat=5)
        tf = best_time(lambda: matmul_acc(af, bf, acc_bits=8, tile=32, mode=mode,
                                          a_max=7, b_max=7), repeat=5)
        tgt = target.get(mode)
        verdict = "" if tgt is None else f"<= {tgt:g}x: {'met' if t / t_f32 <= tgt else 'MISSED'}"
        rows.append([f"int_matmul {mode} (int8 in)", "tile 32, acc 8", ms(t),
                     f"{t / t_f32:.2f}", f"{t / t_i64:.3f}", verdict])
        rows.append([f"matmul_acc {mode} (float32 in)", "tile 32, acc 8", ms(tf),
                     f"{tf / t_f32:.2f}", f"{tf / t_i64:.3f}", ""])


def bench_fwht(rows):
    n = 1 << 22
    rng = np.random.default_rng(1)
    for blk in (32, 128, 1024):
        x = rng.standard_normal((n // blk, blk)).astype(np.float32)
        H = block_hadamard(blk, dtype=np.float32)
        t = best_time(lambda: fwht(x), repeat=5)
        t_dense = best_time(lambda: x @ H, repeat=5)
        t_copy = best_time(lambda: x.copy(), repeat=7)
        verdict = ""
        if blk == 1024:
            ok = t_dense / t >= 5 and t / t_copy <= 4
            verdict = f">= 5x faster than dense, <= 4x copy: {'met' if ok else 'MISSED'}"
        rows.append([f"fwht block {blk}", "2^22 float32, axis -1", ms(t),
                     f"dense {ms(t_dense)} ms: {t_dense / t:.2f}x faster",
                     f"copy {ms(t_copy)} ms: {t / t_copy:.2f}x copy", verdict])
    # the backward's other layout: transform over axis 0 (batch rows)
    x = rng.standard_normal((1024, n // 1024)).astype(np.float32)
    t = best_time(lambda: fwht(x, axis=0), repeat=5)
    t_dense = best_time(lambda: block_hadamard(1024, dtype=np.float32) @ x, repeat=3)
    t_copy = best_time(lambda: x.copy(), repeat=7)
    rows.append(["fwht block 1024, axis 0", "2^22 float32 (1024, 4096)", ms(t),
                 f"dense {ms(t_dense)} ms: {t_dense / t:.2f}x faster",
                 f"copy {ms(t_copy)} ms: {t / t_copy:.2f}x copy", "(extra)"])


def bench_quant(rows):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(1 << 22).astype(np.float32)

    def plain():
        s = np.float32(np.abs(x).max() / 7)
        return np.floor(np.clip(x / s, -7, 7) + rng.random(x.shape, dtype=np.float32))

    t_plain = best_time(plain, repeat=5)
    g = np.random.default_rng(3)
    t_q = best_time(lambda: quantize(x, 4, rounding="stochastic", rng=g), repeat=5)
    t_qf = best_time(lambda: quantize_f32(x, 4, rounding="stochastic", rng=g), repeat=5)
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
    notes = ["Best of several runs each; the 2 cores were shared with other jobs, so "
             "figures are noisy. Ratios compare runs made seconds apart in one process."]
    path = write_table("kernels", "Kernel speed (issue 2)", header_mm, rows,
                       "make bench-kernels", notes)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
