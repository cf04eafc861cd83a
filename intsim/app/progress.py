"""Progress reporting for ``intsim train``: bars, task lines, quiet and JSON lines.

Three modes:

- ``"bar"`` (default): per epoch a progress bar with running loss and
  accuracy on stderr (redrawn in place on a terminal with the seconds so far
  and the projected seconds per epoch; one line per finished epoch, ending
  in its seconds per epoch, otherwise); per task a line with its accuracies
  on stdout. With ``detail=False`` (``intsim train`` when stdout is not a
  terminal, unless ``-v``) only the task lines: no epoch bars and no
  per-task audit tables (the driver reads :attr:`Progress.detail`).
- ``"quiet"``: nothing but what the caller prints itself.
- ``"jsonl"``: one JSON object per line on stdout for every epoch and task
  (``{"event": "epoch", ...}``, ``{"event": "task", ...}``) and nothing else.

Warnings (``intsim: warning: ...``, one line each on stderr) are printed in
every mode. Lines given to :meth:`Progress.hold` wait until the run has
checked its settings and data (the driver calls :meth:`Progress.release`), so
a refused run prints only its one error line.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from intsim.app.runfolder import to_jsonable

MODES = ("bar", "quiet", "jsonl")


class Progress:
    """Stateful reporter; call start_epoch / batch / end_epoch / task / event."""

    def __init__(self, mode: str = "bar", out: TextIO | None = None,
                 err: TextIO | None = None, tty: bool | None = None,
                 width: int = 24, min_interval: float = 0.1, detail: bool = True):
        if mode not in MODES:
            raise ValueError(f"unknown progress mode {mode!r} (choose from {', '.join(MODES)})")
        self.mode = mode
        #: bar mode: epoch bars and per-task audit tables (False: task lines only)
        self.detail = detail
        self._held: list[tuple[bool, str]] = []
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        if tty is None:
            tty = bool(getattr(self.err, "isatty", lambda: False)())
        self.tty = tty
        self.width = width
        self.min_interval = min_interval
        self._last_draw = 0.0
        self._ep: dict[str, Any] = {}

    # ---------------------------------------------------------------- epochs
    def start_epoch(self, task: int, num_tasks: int, epoch: int, epochs: int,
                    num_batches: int | None = None, stage: str = "") -> None:
        """task/epoch are 0-based; printed 1-based."""
        if self.mode == "bar" and not self.detail:
            return
        self._ep = {"task": task, "num_tasks": num_tasks, "epoch": epoch, "epochs": epochs,
                    "num_batches": num_batches, "stage": stage, "batch": 0,
                    "loss_sum": 0.0, "correct": 0, "seen": 0, "t0": time.perf_counter()}
        self._last_draw = 0.0

    def batch(self, loss: float, correct: int, count: int) -> None:
        """Record one batch: its mean loss, number correct, batch size."""
        e = self._ep
        if not e:
            return
        e["batch"] += 1
        e["loss_sum"] += float(loss) * int(count)
        e["correct"] += int(correct)
        e["seen"] += int(count)
        if self.mode == "bar" and self.tty:
            now = time.perf_counter()
            if now - self._last_draw >= self.min_interval or e["batch"] == e["num_batches"]:
                self._last_draw = now
                self.err.write("\r" + self._bar_line() + self._eta(now) + "\x1b[K")
                self.err.flush()

    def running(self) -> tuple[float, float]:
        """(running mean loss, running accuracy 0..1) of the current epoch."""
        e = self._ep
        if not e or not e["seen"]:
            return float("nan"), float("nan")
        return e["loss_sum"] / e["seen"], e["correct"] / e["seen"]

    def end_epoch(self, loss: float | None = None, acc: float | None = None) -> None:
        """Finish the epoch; loss/acc override the running values when given."""
        e = self._ep
        if not e:
            return
        rl, ra = self.running()
        loss = rl if loss is None else float(loss)
        acc = ra if acc is None else float(acc)
        secs = time.perf_counter() - e["t0"]
        if self.mode == "jsonl":
            self._emit({"event": "epoch", "task": e["task"], "epoch": e["epoch"] + 1,
                        "stage": e["stage"] or None, "loss": loss, "acc": acc,
                        "seconds": round(secs, 3)})
        elif self.mode == "bar":
            if e["num_batches"] is None:
                e["num_batches"] = e["batch"]
            line = self._bar_line(loss, acc) + f" {secs:.1f} s/epoch"
            self.err.write(("\r" + line + "\x1b[K\n") if self.tty else line + "\n")
            self.err.flush()
        self._ep = {}

    def _eta(self, now: float) -> str:
        """Live bar suffix: seconds so far and the epoch's projected seconds."""
        e = self._ep
        secs = now - e["t0"]
        n = e["num_batches"]
        if not n or not e["batch"]:
            return f" {secs:.0f}s"
        return f" {secs:.0f}s, ~{secs * n / min(e['batch'], n):.0f} s/epoch"

    def _bar_line(self, loss=None, acc=None) -> str:
        e = self._ep
        if loss is None:
            loss, acc = self.running()
        n = e["num_batches"] or 0
        done = min(e["batch"], n) if n else e["batch"]
        fill = int(self.width * done / n) if n else 0
        bar = "#" * fill + "." * (self.width - fill)
        stage = f" {e['stage']}" if e["stage"] else ""
        counts = f"{done}/{n}" if n else f"{done}"
        return (f"task {e['task'] + 1}/{e['num_tasks']}{stage} epoch {e['epoch'] + 1}/{e['epochs']} "
                f"[{bar}] {counts} loss {loss:.4f} acc {100 * acc:5.1f}%")

    # ----------------------------------------------------------------- tasks
    def task(self, info: dict) -> None:
        """A task finished. info: task (0-based), num_tasks, classes_seen, cnn, nme
        (percent or None), seconds, saturated_pct, flagged (list of layers)."""
        if self.mode == "jsonl":
            self._emit({"event": "task", **info})
            return
        if self.mode == "quiet":
            return
        parts = [f"task {info['task'] + 1}/{info['num_tasks']}"]
        if info.get("classes_seen") is not None:
            parts.append(f"classes {info['classes_seen']}")
        for k in ("cnn", "nme"):
            if info.get(k) is not None:
                parts.append(f"{k.upper()} {info[k]:.2f}%")
        if info.get("saturated_pct") is not None:
            parts.append(f"saturated {info['saturated_pct']:.2f}%")
        if info.get("flagged"):
            parts.append(f"flagged {len(info['flagged'])}")
        if info.get("seconds") is not None:
            parts.append(f"{info['seconds']:.1f}s")
        self.message("  ".join(parts))

    def event(self, obj: dict) -> None:
        """A JSON event (only printed in jsonl mode)."""
        if self.mode == "jsonl":
            self._emit(obj)

    def message(self, text: str) -> None:
        """Human-readable text on stdout (bar mode only)."""
        if self.mode == "bar":
            self.out.write(text + "\n")
            self.out.flush()

    def note(self, text: str) -> None:
        """A notice on stderr (bar mode only), e.g. that kernels are compiling."""
        if self.mode == "bar":
            self.err.write(text + "\n")
            self.err.flush()

    def warn(self, text: str) -> None:
        """``intsim: warning: text`` on stderr, in every mode."""
        self.err.write(f"intsim: warning: {text}\n")
        self.err.flush()

    def hold(self, text: str, warning: bool = False) -> None:
        """Print ``text`` when :meth:`release` is called: a warning (:meth:`warn`) or a
        notice (:meth:`note`)."""
        self._held.append((warning, text))

    def release(self) -> None:
        """Print the held lines (the run's settings and data have been checked)."""
        held, self._held = self._held, []
        for warning, text in held:
            (self.warn if warning else self.note)(text)

    def _emit(self, obj: dict) -> None:
        self.out.write(json.dumps(to_jsonable(obj), separators=(",", ":")) + "\n")
        self.out.flush()
