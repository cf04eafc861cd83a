"""The sweep client's progress lines on stderr (docs/sweeps.md, "Progress and status")::

    sweep: 12 runs, 3 already done, 9 to run on local process pool, 2 worker(s); results in ...
    [done 4/12 running 2 failed 0; 3.1 min; ETA 7.8 min] hapt-icarl-fp-s42467-...: cnn last/avg ...
    [done 5/12 running 2 failed 0 diverged 1; 3.5 min; ETA 6.1 min] DIVERGED hapt-...: training ...

``diverged v`` appears once a run has diverged (v > 0). The ETA is the elapsed
time per run finished in this sweep times the runs left.
"""
from __future__ import annotations

import sys
import time


def fmt_min(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


class SweepProgress:
    """Counts of a sweep's runs (done, failed, diverged, finished here) and its lines on
    ``log``."""

    def __init__(self, total: int, already_done: int, log=None, already_diverged: int = 0):
        self.log = sys.stderr if log is None else log
        self.total = total
        self.done = already_done
        self.already_diverged = already_diverged
        self.diverged = already_diverged
        self.failed = 0
        self.finished = 0           # runs finished in this sweep (the ETA's rate)
        self.t0 = time.perf_counter()

    def _print(self, text: str) -> None:
        print(text, file=self.log, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def start(self, to_run: int, where: str, out: str) -> None:
        div = f", {self.already_diverged} diverged before" if self.already_diverged else ""
        self._print(f"sweep: {self.total} runs, {self.done} already done{div}, {to_run} to run "
                    f"on {where}; results in {out}")

    def line(self, msg: str, running: int, left: int, waiting: int = 0) -> None:
        """``[done d/n running r failed f diverged v; elapsed; ETA] msg`` (``diverged v``
        when v > 0); ``left``: runs not finished (pending, running or waiting for
        another process)."""
        el = self.elapsed()
        eta = f"ETA {fmt_min(el / self.finished * left)}" if self.finished and left else (
            "ETA -" if left else "")
        wait = f" waiting {waiting}" if waiting else ""
        div = f" diverged {self.diverged}" if self.diverged else ""
        self._print(f"[done {self.done}/{self.total} running {running}{wait} failed "
                    f"{self.failed}{div}; {fmt_min(el)}{'; ' + eta if eta else ''}] {msg}")

    def run_done(self, key: str, rec: dict) -> str:
        """Count a finished run; its line's message."""
        self.finished += 1
        self.done += 1
        s = rec["summary"]
        nme = f" nme {s['nme_last']:.1f}/{s['nme_avg']:.1f}" \
            if s.get("nme_last") is not None else ""
        how = "run by another process" if rec.get("skipped") else \
            fmt_min(rec.get("seconds") or 0)
        return f"{key}: cnn last/avg {s['cnn_last']:.1f}/{s['cnn_avg']:.1f}{nme} ({how})"

    def run_failed(self, key: str, rec: dict) -> str:
        """Count a failed run; its line's message."""
        self.finished += 1
        self.failed += 1
        return f"FAILED {key}: {rec.get('error')}"

    def run_diverged(self, key: str, rec: dict) -> str:
        """Count a run that diverged (a final outcome, not a failure); its line's message."""
        self.finished += 1
        self.diverged += 1
        how = " (diverged in another process)" if rec.get("skipped") else ""
        return f"DIVERGED {key}: {rec.get('error')}{how}"

    def end(self, out: str) -> None:
        div = f", {self.diverged} diverged" if self.diverged else ""
        self._print(f"sweep: {self.done} done, {self.failed} failed{div} of {self.total} in "
                    f"{fmt_min(self.elapsed())}" +
                    (f"; see `intsim sweep status {out}`" if self.failed or self.diverged
                     else ""))
