"""Run folder layout, atomic writes and checksummed checkpoints.

A run folder RUN holds::

    RUN/config.toml          the full resolved configuration
    RUN/results.json         per-task metrics, audit, timings, versions, seed
    RUN/log.jsonl            one JSON event per line (appended)
    RUN/checkpoint.json      the commit record of the latest checkpoint
    RUN/ckpt-task<T>.npz     arrays of the checkpoint after task T (0-based)

Every whole-file write goes to a temporary file in the same folder, is
fsynced and then renamed over the target, so a reader (or a Ctrl-C) sees
either the old or the new file, never half of one. A checkpoint is two
files: the .npz (written first, under a new name) and checkpoint.json, which
names the .npz and its SHA-256 and is replaced last; that rename is the
commit point. Loading recomputes the checksum, so a truncated or altered
checkpoint is detected (:class:`CheckpointError`).

Nested state (dicts/lists of numpy arrays, numpy scalars, ints, floats,
strings, None, bytes) is split by :func:`flatten_state` into a JSON skeleton
and a dict of arrays, and rebuilt exactly by :func:`unflatten_state`.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:                 # not on Windows: RunLock is a no-op there
    fcntl = None

CONFIG = "config.toml"
RESULTS = "results.json"
LOG = "log.jsonl"
CHECKPOINT = "checkpoint.json"
CKPT_FORMAT = 1
LOCK = ".lock"


class CheckpointError(ValueError):
    """A checkpoint is missing a part, truncated or fails its checksum."""


# ------------------------------------------------------------- atomic writes

def _file_mode() -> int:
    """0666 minus the process umask: the mode open() would give a new file
    (mkstemp's own 0600 would make a shared results folder unreadable)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via temp file + fsync + rename (mode as open() gives)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """numpy scalars/arrays -> Python numbers/lists, tuples -> lists, recursively."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=1, sort_keys=False) + "\n")


def append_jsonl(path, event: dict) -> None:
    """Append one JSON line (a single write of a complete line)."""
    line = json.dumps(to_jsonable(event), separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()


def read_json(path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# --------------------------------------------------------- state flattening

def flatten_state(obj: Any, prefix: str = "s") -> tuple[Any, dict[str, np.ndarray]]:
    """Split nested state into (JSON-able skeleton, {key: ndarray}).

    Arrays become ``{"__nd__": key}``; tuples ``{"__tuple__": [...]}``;
    bytes ``{"__bytes__": hex}``; numpy scalars ``{"__np__": dtype, "v": value}``;
    dicts with non-string keys ``{"__items__": [[k, v], ...]}``. Python ints
    of any size and floats (incl. nan/inf, stored as arrays) round-trip exactly.
    """
    arrays: dict[str, np.ndarray] = {}
    counter = [0]

    def new_key():
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def go(o):
        if isinstance(o, np.ndarray):
            k = new_key()
            arrays[k] = o
            return {"__nd__": k}
        if isinstance(o, np.generic):
            k = new_key()
            arrays[k] = np.asarray(o)
            return {"__npscalar__": k}
        if isinstance(o, bool) or o is None or isinstance(o, str):
            return o
        if isinstance(o, int):
            return o
        if isinstance(o, float):
            if np.isfinite(o):
                return o
            k = new_key()
            arrays[k] = np.asarray(o, dtype=np.float64)
            return {"__float__": k}
        if isinstance(o, bytes):
            return {"__bytes__": o.hex()}
        if isinstance(o, tuple):
            return {"__tuple__": [go(v) for v in o]}
        if isinstance(o, list):
            return [go(v) for v in o]
        if isinstance(o, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in o):
                return {k: go(v) for k, v in o.items()}
            return {"__items__": [[go(k), go(v)] for k, v in o.items()]}
        raise TypeError(f"cannot checkpoint a {type(o).__name__}")

    return go(obj), arrays


def unflatten_state(skel: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`flatten_state`."""
    def go(o):
        if isinstance(o, list):
            return [go(v) for v in o]
        if isinstance(o, dict):
            if "__nd__" in o:
                return arrays[o["__nd__"]]
            if "__npscalar__" in o:
                return arrays[o["__npscalar__"]][()]
            if "__float__" in o:
                return float(arrays[o["__float__"]])
            if "__bytes__" in o:
                return bytes.fromhex(o["__bytes__"])
            if "__tuple__" in o:
                return tuple(go(v) for v in o["__tuple__"])
            if "__items__" in o:
                return {_hashable(go(k)): go(v) for k, v in o["__items__"]}
            return {k: go(v) for k, v in o.items()}
        return o
    try:
        return go(skel)
    except KeyError as e:
        raise CheckpointError(f"checkpoint arrays lack entry {e}") from None


def _hashable(k):
    return tuple(k) if isinstance(k, list) else k


# ---------------------------------------------------------------- checkpoints

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(run_dir, task: int, state: Any) -> Path:
    """Save ``state`` (nested dicts of arrays/scalars) as the checkpoint after ``task``.

    Order: new .npz (atomic) -> checkpoint.json (atomic; the commit) -> remove
    older .npz files. Interrupting at any point leaves a loadable checkpoint.
    """
    run_dir = Path(run_dir)
    skel, arrays = flatten_state(state)
    buf = io.BytesIO()
    np.savez(buf, **arrays)   # uncompressed: zlib on the weights costs seconds per task
    data = buf.getvalue()
    name = f"ckpt-task{task:03d}.npz"
    atomic_write_bytes(run_dir / name, data)
    record = {"format": CKPT_FORMAT, "task": int(task), "arrays": name,
              "sha256": _sha256(data), "nbytes": len(data), "state": skel}
    atomic_write_json(run_dir / CHECKPOINT, record)
    for p in run_dir.glob("ckpt-task*.npz"):
        if p.name != name:
            try:
                p.unlink()
            except OSError:
                pass
    return run_dir / name


def has_checkpoint(run_dir) -> bool:
    return (Path(run_dir) / CHECKPOINT).exists()


def load_checkpoint(run_dir) -> tuple[int, Any]:
    """Return (task, state) of the latest checkpoint; CheckpointError if broken."""
    run_dir = Path(run_dir)
    rec_path = run_dir / CHECKPOINT
    try:
        rec = read_json(rec_path)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint in {run_dir} ({CHECKPOINT} missing)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"corrupt checkpoint record {rec_path}: {e}") from None
    if not isinstance(rec, dict) or rec.get("format") != CKPT_FORMAT or not all(
            k in rec for k in ("task", "arrays", "sha256", "state")):
        raise CheckpointError(f"corrupt checkpoint record {rec_path}: missing fields or unknown format")
    npz_path = run_dir / str(rec["arrays"])
    if Path(rec["arrays"]).name != rec["arrays"]:
        raise CheckpointError(f"corrupt checkpoint record {rec_path}: bad arrays file name")
    try:
        data = npz_path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint arrays file missing: {npz_path}") from None
    if _sha256(data) != rec["sha256"]:
        size = (f"{len(data)} bytes, expected {rec.get('nbytes')}"
                if len(data) != rec.get("nbytes") else f"same size, {len(data)} bytes, "
                                                         f"but other contents")
        raise CheckpointError(f"corrupt checkpoint {npz_path}: checksum mismatch ({size})")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # a checksummed but unreadable file: still corrupt
        raise CheckpointError(f"corrupt checkpoint {npz_path}: {e}") from None
    return int(rec["task"]), unflatten_state(rec["state"], arrays)


def remove_checkpoint(run_dir) -> None:
    """Delete the checkpoint (record first, so no record ever names a missing .npz)."""
    run_dir = Path(run_dir)
    for p in [run_dir / CHECKPOINT] + sorted(run_dir.glob("ckpt-task*.npz")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock."""


class RunLock:
    """Exclusive lock on a run folder while a process writes it (``RUN/.lock``).

    ``flock`` on the file: the kernel drops it when the holder exits, even
    when killed. The holder's pid is written into the file for the message
    another process gets. Where ``flock`` is unavailable the lock is a no-op.
    """

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK
        self._fd = None

    def acquire(self) -> "RunLock":
        if fcntl is None:
            return self
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, _file_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                pid = os.read(fd, 32).decode().strip() or "?"
            except OSError:
                pid = "?"
            os.close(fd)
            raise RunFolderBusy(f"run folder {self.path.parent} is in use by another "
                                f"intsim process (pid {pid})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def discard_epochs(log_path, from_task: int) -> int:
    """Rename the ``epoch`` events of tasks >= from_task in a log.jsonl to
    ``epoch_discarded`` (atomically); returns how many. A resumed run trains
    those tasks again, so the log then holds each counted epoch once."""
    path = Path(log_path)
    out, n = [], 0
    for line in path.read_text().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if ev.get("event") == "epoch" and int(ev.get("task", -1)) >= from_task:
            ev["event"] = "epoch_discarded"
            line = json.dumps(ev, separators=(",", ":"))
            n += 1
        out.append(line)
    if n:
        atomic_write_text(path, "\n".join(out) + "\n")
    return n
