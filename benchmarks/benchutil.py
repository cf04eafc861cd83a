"""Shared helpers for the benchmark scripts: timing, machine facts, tables.

Every benchmark prints each figure beside a baseline measured in the same
run (as a ratio) and writes a markdown table to benchmarks/results/ that
names the command reproducing it.
"""
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone

import numpy as np

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def best_time(fn, *, repeat=5, number=1, warmup=1):
    """Best wall time (seconds) of ``number`` calls of ``fn`` over ``repeat`` runs."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def best_times(fns, *, rounds=10, warmup=1):
    """Best wall time (seconds) of each of ``fns`` (a dict name -> callable).

    The calls are interleaved (one call of each per round, ``rounds`` rounds),
    so a slow spell of the machine hits every candidate alike and the ratios
    between them stay meaningful even when the absolute times drift.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def machine_line():
    """One line describing the machine, Python, NumPy and BLAS threads."""
    try:
        import numba
        nb = numba.__version__
    except ImportError:  # pragma: no cover
        nb = "absent"
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"NumPy {np.__version__}, Numba {nb}, "
            f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")


def write_table(name, title, header, rows, command, notes=()):
    """Write ``benchmarks/results/<name>.md`` atomically and return its path.

    header: list of column names; rows: list of lists (already formatted).
    """
    os.makedirs(RESULTS_DIR, exist_ok=True)
    lines = [f"# {title}", "", f"Command: `{command}`", "", f"Machine: {machine_line()}", ""]
    lines.append(md_table(header, rows))
    if notes:
        lines.append("")
        lines.extend(notes)
    text = "\n".join(lines) + "\n"
    path = os.path.join(RESULTS_DIR, name + ".md")
    fd, tmp = tempfile.mkstemp(dir=RESULTS_DIR, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def md_table(header, rows):
    """A markdown table (one string) of a header and already formatted rows."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def print_table(header, rows, file=sys.stdout):
    """Print rows as an aligned plain-text table."""
    cols = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    for j, r in enumerate(cols):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)), file=file)
        if j == 0:
            print("  ".join("-" * w for w in widths), file=file)


# ------------------------------------------------------------ cached runs

#: The benchmark jobs' run folders (intsim.app.jobs), committed with the tables.
RUNS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "runs")


def quick_mode() -> bool:
    """True when the environment says QUICK=1 (the Makefile passes QUICK)."""
    return os.environ.get("QUICK", "0").strip() not in ("", "0", "false", "no")


def run_or_collect(jobs, argv=None, runs_dir: str = RUNS_DIR) -> dict:
    """intsim.app.jobs.run_jobs(jobs), or only collect() when '--table-only' is in argv."""
    from intsim.app import jobs as ex
    argv = sys.argv[1:] if argv is None else argv
    if "--table-only" in argv:
        runs = ex.collect(jobs, runs_dir)
        n = len({j.key for j in jobs})
        print(f"jobs: --table-only: {len(runs)} of {n} runs finished; "
              f"missing ones show as '-'", file=sys.stderr)
        return runs
    return ex.run_jobs(jobs, runs_dir)


# ------------------------------------------------------------ subject splits

#: The subject split and scaling intsim had before --split/--scale (the former
#: tables' runs): the smallest user ids train, min-max scaling fit on them. The
#: paper schedule now defaults to the released code's split (docs/data.md).
OLD_SPLIT = {"split": "sorted", "scale": "train-minmax"}

SPLIT_NOTES = {
    "paper": "Subject split: the authors' (random.Random(seed).sample of the subjects in file "
             "order, 23 of 28 train; no rescaling), drawn per seed (docs/data.md).",
    "sorted": "Subject split: intsim's former fixed one (subjects 1-6, 8-24 train; min-max "
              "scaling fit on them); the `-paper` target has the authors'.",
}


def split_arg(argv=None) -> str:
    """'paper' when argv has `--split paper`, 'sorted' (the former split) otherwise."""
    argv = sys.argv[1:] if argv is None else argv
    if "--split" not in argv:
        return "sorted"
    i = argv.index("--split")
    value = argv[i + 1] if i + 1 < len(argv) else ""
    if value not in ("paper", "sorted"):
        raise SystemExit(f"--split must be 'paper' or 'sorted', got {value!r}")
    return value


def split_overrides(split: str) -> dict:
    """The Job overrides that select `split` ({} for the paper schedule's default)."""
    return dict(OLD_SPLIT) if split == "sorted" else {}
