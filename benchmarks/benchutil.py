"""Shared helpers for the benchmark scripts: timing, machine facts, tables, and
the runs of a benchmark grid.

Every benchmark prints each figure beside a baseline measured in the same
run (as a ratio) and writes a markdown table to benchmarks/results/ that
names the command reproducing it.

The grid benchmarks (reproduce_hapt.py, sweep_acc.py, ablate.py,
split_compare.py) run nothing: `intsim sweep SPEC` runs a grid, and the
script reads the runs of the same SPEC and overlay (:class:`Grid`, through
intsim.app.sweep's own listing of a SPEC's runs) and writes the table; a run
not finished yet shows as '-'.
"""
import argparse
import os
import platform
import shlex
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


def write_table(name, title, header, rows, command, notes=(), results_dir=None):
    """Write ``<results_dir>/<name>.md`` (default: benchmarks/results/) atomically,
    print the command that reproduces it, and return its path.

    header: list of column names; rows: list of lists (already formatted);
    command: the command that reproduces the table (written into it).
    """
    results_dir = RESULTS_DIR if results_dir is None else results_dir
    os.makedirs(results_dir, exist_ok=True)
    lines = [f"# {title}", "", f"Command: `{command}`", "", f"Machine: {machine_line()}", ""]
    lines.append(md_table(header, rows))
    if notes:
        lines.append("")
        lines.extend(notes)
    text = "\n".join(lines) + "\n"
    path = os.path.join(results_dir, name + ".md")
    fd, tmp = tempfile.mkstemp(dir=results_dir, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    print(f"reproduce: {command}")
    return path


def md_table(header, rows):
    """A markdown table (one string) of a header and already formatted rows."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def print_table(header, rows, file=None):
    """Print rows as an aligned plain-text table (on ``file``, default stdout)."""
    file = sys.stdout if file is None else file
    cols = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    for j, r in enumerate(cols):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)), file=file)
        if j == 0:
            print("  ".join("-" * w for w in widths), file=file)


# ------------------------------------------------------------ benchmark grids

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "specs")

SPLIT_NOTES = {
    "paper": "Subject split: the authors' (random.Random(seed).sample of the subjects in file "
             "order, 23 of 28 train; no rescaling), drawn per seed (docs/data.md).",
    "sorted": "Subject split: intsim's former fixed one (subjects 1-6, 8-24 train; min-max "
              "scaling fit on them); the *_paper SPECs have the authors'.",
}


def _shown(path) -> str:
    """A path as the reproducing command spells it: relative to the repository when inside."""
    full = os.path.abspath(path)
    rel = os.path.relpath(full, ROOT)
    return rel if not rel.startswith("..") else full


class _Parser(argparse.ArgumentParser):
    def error(self, message):           # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def grid_parser(script: str, doc: str, spec: str, name: str | None = None):
    """The command line of a grid benchmark: the SPEC and overlay of `intsim sweep`
    (the same options), where the table goes and its name."""
    p = _Parser(
        prog=f"benchmarks/{script}.py", description=doc.strip().splitlines()[0],
        epilog="Runs nothing: `intsim sweep SPEC` (with the same --overlay/--set/--seeds/--out) "
               "runs the grid; runs not finished yet show as '-'.")
    p.add_argument("--spec", default=os.path.join(SPECS_DIR, spec + ".toml"),
                   help=f"the grid's SPEC file [default: benchmarks/specs/{spec}.toml]")
    p.add_argument("--overlay", action="append", default=[], metavar="FILE",
                   help="an overlay file, as in `intsim sweep` (e.g. benchmarks/specs/quick.toml); "
                        "the table's name gets _<its name>")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of every run, as in `intsim sweep`")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="only the SPEC's first N seeds, as in `intsim sweep`")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the sweep's folder [default: the SPEC's out]")
    p.add_argument("--tables", default=None, metavar="DIR",
                   help="where the table goes [default: benchmarks/results]")
    p.add_argument("--name", default=None,
                   help=f"the table's file name without .md [default: "
                        f"{name or 'the SPEC' + chr(39) + 's name'}, + _<overlay name> for "
                        f"each --overlay]")
    return p


class Grid:
    """The runs of a SPEC with an overlay, as `intsim sweep` lists them, and the
    results.json of each finished one: what a grid benchmark's table reads.

    Rows of a table are groups of runs that differ only in their seed
    (:meth:`groups`); figures are the mean +- sample std over a group's
    finished runs, differences are paired by seed.
    """

    def __init__(self, script: str, args, name: str | None = None):
        from intsim.app import sweep as sw
        self.script, self.args = script, args
        self.spec = sw.load_spec(args.spec, sw.make_overlay(args.overlay, args.set, args.seeds))
        self.out = self.spec.out_dir(args.out)
        self.runs = self.spec.runs
        self.results = {}
        self.diverged = {}                  # key -> the run's diverged event
        for r in self.runs:
            res = sw.load_done(r, self.out)
            if res is not None:
                self.results[r.key] = res
            else:
                ev = sw.load_diverged(r, self.out)
                if ev is not None:
                    self.diverged[r.key] = ev
        self.name = args.name or (name or self.spec.name) + "".join(
            "_" + n for n in self.spec.overlay.names)

    # ---- reading the runs

    @property
    def missing(self) -> int:
        """Runs neither finished nor diverged."""
        return len(self.runs) - len(self.results) - len(self.diverged)

    def seeds(self) -> list:
        return self.spec.seeds()

    def groups(self, key) -> dict:
        """{key(run's resolved RunConfig): {seed: run}} in the SPEC's order; runs whose
        key is None are left out."""
        out: dict = {}
        for r in self.runs:
            k = key(r.resolved)
            if k is not None:
                out.setdefault(k, {})[r.config.seed] = r
        return out

    def values(self, members: dict, field: str) -> dict:
        """{seed: run_summary(...)[field]} of a group (None where the run is not finished)."""
        from intsim.app.jobs import run_summary
        out = {}
        for seed, r in members.items():
            res = self.results.get(r.key)
            out[seed] = None if res is None else run_summary(res).get(field)
        return out

    def fmt(self, members: dict, field: str, digits: int = 2) -> str:
        from intsim.app.jobs import fmt_pm
        return fmt_pm(list(self.values(members, field).values()), digits)

    def diff(self, members: dict, base: dict, field: str, digits: int = 2) -> str:
        """``members - base`` of ``field``, paired by seed, as 'm +- s'."""
        from intsim.app.jobs import fmt_pm
        a, b = self.values(members, field), self.values(base, field)
        return fmt_pm([a[s] - b[s] for s in a if a[s] is not None and b.get(s) is not None],
                      digits)

    def done(self, members: dict) -> int:
        """How many runs of a group are finished."""
        return sum(r.key in self.results for r in members.values())

    # ---- notes and the table

    def epochs(self) -> list:
        return sorted({r.resolved.epochs for r in self.runs})

    def mode_note(self) -> str:
        ep = self.epochs()
        ov = f" (overlay {', '.join(self.spec.overlay.names)})" if self.spec.overlay.names else ""
        if ep == [100]:
            return f"Mode: full protocol (100 epochs per task){ov}."
        n = len(self.seeds())
        return (f"Mode: {'/'.join(map(str, ep))} epochs per task, {n} seed{'s' * (n != 1)}{ov}: "
                f"NOT the paper protocol.")

    def split_notes(self) -> list:
        splits = dict.fromkeys(r.resolved.split for r in self.runs)
        return [SPLIT_NOTES[s] for s in splits if s in SPLIT_NOTES]

    def compute_note(self, extra: str = "") -> str:
        """The compute of the finished runs, the runs still to run, and each diverged run
        (its label, seed, where and why: it is an outcome, left out of the figures)."""
        from intsim.app.jobs import run_seconds
        total = sum(run_seconds(r) for r in self.results.values())
        note = (f"Compute: {len(self.results)} runs, {total / 60:.1f} CPU-min in total"
                + (f"; {self.missing} run(s) not finished yet (shown as '-')"
                   if self.missing else "") + extra + ".")
        if self.diverged:
            runs = {r.key: r for r in self.runs}
            note += f" Diverged ({len(self.diverged)}, left out of the figures): " + "; ".join(
                f"{runs[k].label or k}: task {ev.get('task', 0) + 1}, "
                f"epoch {ev.get('epoch')}: {ev.get('cause')}" for k, ev in self.diverged.items()) + "."
        return note

    def options(self) -> list:
        """The SPEC-selecting options, as `intsim sweep` and the script both take them."""
        a = self.args
        opts = []
        for f in a.overlay:
            opts += ["--overlay", _shown(f)]
        for kv in a.set:
            opts += ["--set", kv]
        if a.seeds is not None:
            opts += ["--seeds", str(a.seeds)]
        if a.out is not None:
            opts += ["--out", _shown(a.out)]
        return opts

    @property
    def command(self) -> str:
        """The commands that reproduce the table: the sweep, then this script."""
        spec, opts = _shown(self.spec.source), self.options()
        mine = list(opts)
        if self.args.name is not None:
            mine += ["--name", self.args.name]
        if self.args.tables is not None:
            mine += ["--tables", _shown(self.args.tables)]
        return (shlex.join(["intsim", "sweep", spec] + opts) + " && " +
                shlex.join(["python", f"benchmarks/{self.script}.py", "--spec", spec] + mine))

    @property
    def tables_dir(self) -> str:
        return self.args.tables or RESULTS_DIR

    def write(self, title, header, rows, notes) -> str:
        """Print the table and the command that reproduces it, write the markdown table;
        returns its path."""
        print_table(header, rows)
        if self.missing:
            sweep = shlex.join(["intsim", "sweep", _shown(self.spec.source)] + self.options())
            print(f"{self.missing} of {len(self.runs)} runs not finished yet (shown as '-'); "
                  f"run: {sweep}", file=sys.stderr)
        path = write_table(self.name, title, header, rows, self.command, notes, self.tables_dir)
        print(f"wrote {path}")
        return path


def load_grid(script: str, doc: str, spec: str, argv=None, name: str | None = None) -> Grid:
    """Parse a grid benchmark's command line and read its runs (default SPEC:
    benchmarks/specs/<spec>.toml; ``name``: the table's name, default the SPEC's).
    Bad input is one line ``benchmarks/<script>.py: error: ...``, exit code 2."""
    args = grid_parser(script, doc, spec, name).parse_args(argv)
    from intsim.app.config import ConfigError
    try:
        return Grid(script, args, name)
    except ConfigError as e:
        print(f"benchmarks/{script}.py: error: {e}", file=sys.stderr)
        raise SystemExit(2)
